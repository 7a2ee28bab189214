package supervise

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/namebook"
	"github.com/slimnet/slim/router/protocol"
)

// routerConn is one connection to the router, one request at a time.
type routerConn struct {
	mu      sync.Mutex
	path    string
	fd      int  // -1: not connected
	redial  bool // a broken connection is made again (with dial)
	dial    func() (int, error)
	timeout time.Duration
	nextID  uint32
}

// errRouterGone says a connection the supervisor cannot make again (secure
// mode without the program's dialer: slim exec made it) is broken.
var errRouterGone = errors.New("the router connection slim exec made is closed")

// routerError is an ERROR reply.
type routerError struct {
	errno unix.Errno
	text  string
}

func (e *routerError) Error() string { return fmt.Sprintf("router: %s (%v)", e.text, e.errno) }

// ask sends one request with its descriptors and returns the reply of the
// wanted type and the descriptors that came with it.
func (c *routerConn) ask(t, want protocol.Type, payload []byte, fds ...int) ([]byte, []int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		payload, got, err := c.exchange(t, want, payload, fds)
		var re *routerError
		if err == nil || errors.As(err, &re) || attempt > 0 || !c.redial {
			return payload, got, err
		}
		// A connection the router closed (restart, idle): once more.
		c.drop()
	}
}

// note sends a one-way message (STATS): nothing comes back. It does not
// wait for room in the router's queue.
func (c *routerConn) note(t protocol.Type, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		err := c.connect()
		if err == nil {
			c.nextID++
			msg := protocol.Message{Type: t, ID: c.nextID, Payload: payload}.Encode()
			if err = unix.Sendmsg(c.fd, msg, nil, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT); err == nil {
				return nil
			}
			if err != unix.EAGAIN {
				c.drop()
			}
		}
		if err == unix.EAGAIN || attempt > 0 || !c.redial {
			return err
		}
	}
}

func (c *routerConn) exchange(t, want protocol.Type, payload []byte, fds []int) ([]byte, []int, error) {
	if err := c.connect(); err != nil {
		return nil, nil, err
	}
	c.nextID++
	msg := protocol.Message{Type: t, ID: c.nextID, Payload: payload}.Encode()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(c.fd, msg, oob, nil, unix.MSG_NOSIGNAL); err != nil {
		c.drop()
		return nil, nil, fmt.Errorf("send %v to the router: %w", t, err)
	}
	reply, got, err := c.receive()
	if err != nil {
		c.drop()
		return nil, nil, err
	}
	switch {
	case reply.Type == protocol.TypeError:
		closeAll(got)
		errno, text, _ := protocol.DecodeErrorPayload(reply.Payload)
		return nil, nil, &routerError{errno: unix.Errno(errno), text: text}
	case reply.Type != want || reply.ID != c.nextID:
		closeAll(got)
		c.drop()
		return nil, nil, fmt.Errorf("router answered %v (id %d) to %v (id %d)", reply.Type, reply.ID, t, c.nextID)
	}
	return reply.Payload, got, nil
}

// receive reads one reply within the timeout.
func (c *routerConn) receive() (protocol.Message, []int, error) {
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(c.timeout)
	for {
		n, err := unix.Poll(fds, int(max(time.Until(deadline).Milliseconds(), 0)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return protocol.Message{}, nil, fmt.Errorf("wait for the router: %w", err)
		}
		if n == 0 {
			return protocol.Message{}, nil, fmt.Errorf("the router did not answer within %v", c.timeout)
		}
		break
	}
	buf := make([]byte, protocol.MaxMessage)
	oob := make([]byte, unix.CmsgSpace(4*protocol.MaxPool))
	n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
	if err != nil {
		return protocol.Message{}, nil, fmt.Errorf("read the router's answer: %w", err)
	}
	var got []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for i := range msgs {
			if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				got = append(got, fds...)
			}
		}
	}
	if n == 0 {
		closeAll(got)
		return protocol.Message{}, nil, errors.New("the router closed the connection")
	}
	m, err := protocol.Decode(buf[:n])
	if err != nil {
		closeAll(got)
		return protocol.Message{}, nil, err
	}
	return m, got, nil
}

func (c *routerConn) connect() error {
	if c.fd >= 0 {
		return nil
	}
	if !c.redial {
		return errRouterGone
	}
	fd, err := c.dial()
	if err != nil {
		return err
	}
	c.fd = fd
	return nil
}

// dialSocket connects to the router's socket at path: the supervisor's own
// connection (plain mode).
func dialSocket(path string) func() (int, error) {
	return func() (int, error) {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("connect to the router at %s: %w", path, err)
		}
		return fd, nil
	}
}

func (c *routerConn) drop() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// router is the supervisor's client of the router: one connection for
// pool refills, another for the rest, so that a LISTEN (which waits for
// the peers) does not hold up a refill.
type router struct {
	pool, control *routerConn
}

// newRouter uses the connections slim exec made (secure mode: the router
// answers only the enrolled program) and, to make new ones, the program's
// dialer; else it dials its own.
func newRouter(cfg Config, files []int) *router {
	dial := dialSocket(cfg.RouterSock)
	if cfg.Secure {
		dial = nil
		if cfg.Dialer && len(files) > 0 {
			d := &dialer{link: files[len(files)-1], timeout: cfg.timeout()}
			files, dial = files[:len(files)-1], d.dial
		}
	}
	conn := func(i int) *routerConn {
		c := &routerConn{path: cfg.RouterSock, fd: -1, timeout: cfg.timeout(), dial: dial, redial: dial != nil}
		if i < len(files) {
			c.fd = files[i]
		}
		return c
	}
	r := &router{pool: conn(0), control: conn(1)}
	if r.control.fd < 0 && r.pool.fd >= 0 && cfg.Secure {
		r.control = r.pool // one connection: both share it
	}
	return r
}

func (r *router) hello() (protocol.Hello, error) {
	payload, _, err := r.control.ask(protocol.TypeHello, protocol.TypeHelloOK, nil)
	if err != nil {
		return protocol.Hello{}, err
	}
	return protocol.DecodeHello(payload)
}

// stats sends a STATS payload, one-way.
func (r *router) stats(payload []byte) error {
	return r.control.note(protocol.TypeStats, payload)
}

// poolSockets asks for n host sockets of the family.
func (r *router) poolSockets(n int, family protocol.PoolFamily) ([]int, error) {
	_, fds, err := r.pool.ask(protocol.TypePool, protocol.TypePoolOK, protocol.PoolPayload(uint32(n), family))
	return fds, err
}

// listen asks for a host listener standing for the program's listener.
func (r *router) listen(app, backlog int) (int, protocol.Listener, error) {
	payload, fds, err := r.control.ask(protocol.TypeListen, protocol.TypeListenOK, protocol.Uint32Payload(uint32(max(backlog, 0))), app)
	if err != nil {
		return -1, protocol.Listener{}, err
	}
	l, err := protocol.DecodeListener(payload)
	if err != nil || len(fds) != 1 {
		closeAll(fds)
		return -1, protocol.Listener{}, fmt.Errorf("LISTEN_OK with %d descriptors: %v", len(fds), err)
	}
	return fds[0], l, nil
}

// publish arms a host listener the router lists as pending since LISTEN
// (docs/datapath.md, "Accepts the shim does not see"): the program was
// seen accepting from its listener.
func (r *router) publish(host int, overlay netip.AddrPort) error {
	_, _, err := r.control.ask(protocol.TypePublish, protocol.TypeOK, protocol.Publish{Overlay: overlay}.Encode(), host)
	return err
}

// reserve has the router list the overlay address of app, a socket about
// to listen, as pending until the LISTEN that follows (a router from
// before RESERVE refuses it: then there is no reservation).
func (r *router) reserve(app int) error {
	_, _, err := r.control.ask(protocol.TypeReserve, protocol.TypeOK, nil, app)
	return err
}

// unlisten withdraws a host listener's directory entry.
func (r *router) unlisten(host int) error {
	_, _, err := r.control.ask(protocol.TypeUnlisten, protocol.TypeOK, nil, host)
	return err
}

// nameBook asks for the container's name book and maps it.
func (r *router) nameBook() (*namebook.Book, error) {
	_, fds, err := r.control.ask(protocol.TypeNameBook, protocol.TypeNameBookOK, nil)
	if err != nil {
		return nil, err
	}
	defer closeAll(fds)
	if len(fds) != 1 {
		return nil, fmt.Errorf("NAMEBOOK_OK with %d descriptors", len(fds))
	}
	return namebook.Map(fds[0])
}

// table asks for a read-only descriptor of the directory table.
func (r *router) table() (int, error) {
	_, fds, err := r.control.ask(protocol.TypeTable, protocol.TypeTableOK, nil)
	if err != nil {
		return -1, err
	}
	if len(fds) != 1 {
		closeAll(fds)
		return -1, fmt.Errorf("TABLE_OK with %d descriptors", len(fds))
	}
	return fds[0], nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
