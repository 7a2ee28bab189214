package router

import (
	"errors"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/router/shimserver"
)

// refuse is a refusal with the errno the shim should see.
func refuse(errno unix.Errno, format string, args ...any) error {
	return shimserver.Refuse(errno, format, args...)
}

// dispatch runs one request. It returns the reply (nil for notes) and the
// descriptors to send with it, which the caller closes after sending.
// ahead is the connection's sockets made ahead (nil: none are made).
func (r *Router) dispatch(who caller, idErr error, req request, ahead *poolAhead) (*protocol.Message, []int) {
	if idErr == nil {
		idErr = r.checkRegistered(who) // containers_linux.go
	}
	var (
		reply protocol.Message
		fds   []int
		err   error
	)
	if idErr == nil {
		idErr = r.mode.checkEnrolled(who, req.Type)
	}
	if idErr != nil {
		err = refuse(unix.EPERM, "%v", idErr)
	} else if req.Type == protocol.TypeEnroll {
		reply, err = r.enroll(who, req)
	} else {
		reply, fds, err = r.handle(who.Container, req, ahead)
	}
	switch req.Type {
	case protocol.TypeStats:
		if err != nil {
			r.log.Debug("dropping note", "type", req.Type, "err", err)
		}
		if idErr != nil {
			r.shimStats.Refuse()
		}
		return nil, nil
	}
	if err != nil {
		r.log.Debug("refusing request", "type", req.Type, "pid", who.PID, "err", err)
		m := shimserver.ErrorMessage(req.ID, shimserver.ErrnoOf(err), err.Error())
		return &m, nil
	}
	reply.ID = req.ID
	return &reply, fds
}

func (r *Router) handle(c *container, req request, ahead *poolAhead) (protocol.Message, []int, error) {
	want := map[protocol.Type]int{protocol.TypeListen: 1, protocol.TypeUnlisten: 1, protocol.TypePublish: 1, protocol.TypeReserve: 1}[req.Type]
	if len(req.FDs) != want {
		return protocol.Message{}, nil, refuse(unix.EINVAL, "%v carries %d descriptors, want %d", req.Type, len(req.FDs), want)
	}
	switch req.Type {
	case protocol.TypeHello:
		return r.hello(c, req.Payload)
	case protocol.TypeTable:
		return r.tableFile(req.Payload)
	case protocol.TypePool:
		return r.pool(c, req.Payload, ahead)
	case protocol.TypeListen:
		return r.listen(c, req.Payload, req.FDs[0])
	case protocol.TypeUnlisten:
		return r.unlisten(c, req.FDs[0])
	case protocol.TypePublish:
		return r.publishListener(c, req.Payload, req.FDs[0]) // publish_linux.go
	case protocol.TypeReserve:
		return r.reserve(c, req.FDs[0]) // reserve_linux.go
	case protocol.TypeNameBook:
		return r.nameBook(c, req.Payload) // namebook_linux.go
	case protocol.TypeStats:
		return protocol.Message{}, nil, r.recordStats(c, req.Payload) // control_linux.go
	}
	return protocol.Message{}, nil, refuse(unix.EOPNOTSUPP, "%v is not a request", req.Type)
}

func (r *Router) hello(c *container, payload []byte) (protocol.Message, []int, error) {
	if len(payload) != 0 {
		return protocol.Message{}, nil, refuse(unix.EINVAL, "HELLO carries no payload")
	}
	h := protocol.Hello{Addr: c.Addr, Overlay: r.plan.Config.CIDR, Secure: r.mode.isSecure(), IPv6: r.plan.Config.IPv6}
	return protocol.Message{Type: protocol.TypeHelloOK, Payload: h.Encode()}, nil, nil
}

// pool hands a container up to the sockets it asks for, within its quota
// of host sockets (poolquota_linux.go); past it, the shim gets EDQUOT and
// uses the overlay. Sockets made ahead for the connection go first
// (poolahead_linux.go): they are counted, witnessed and marked already.
func (r *Router) pool(c *container, payload []byte, ahead *poolAhead) (protocol.Message, []int, error) {
	n, family, err := protocol.PoolRequest(payload)
	if err != nil {
		return protocol.Message{}, nil, refuse(unix.EINVAL, "%v", err)
	}
	now := time.Now()
	fds, cookies := ahead.take(c, int(family), n)
	if len(fds) < n {
		more, moreCookies, err := r.freshPoolSockets(c, n-len(fds), int(family), now)
		if err != nil && len(fds) == 0 {
			return protocol.Message{}, nil, err
		}
		fds, cookies = append(fds, more...), append(cookies, moreCookies...)
	}
	c.pool.handOut(len(fds))
	ahead.asked(int(family), n, now)
	// Control API: which container holds which pool socket.
	r.census.HandedOut(c.Name, cookies, now)
	return protocol.Message{Type: protocol.TypePoolOK, Payload: protocol.Uint32Payload(uint32(len(fds)))}, fds, nil
}

// freshPoolSockets reserves up to n sockets under c's quota and makes
// them (pool).
func (r *Router) freshPoolSockets(c *container, n, family int, now time.Time) ([]int, []uint64, error) {
	granted, held := c.pool.reserve(n, now)
	if granted == 0 {
		return nil, nil, refuse(unix.EDQUOT, "container %s holds %d host sockets, its quota (limits.pool_sockets): no more until it closes some", c.Name, held)
	}
	fds, cookies, err := r.newPoolSockets(c, granted, family)
	c.pool.settle(granted, len(fds))
	return fds, cookies, err
}

// newPoolSockets makes n pool sockets of family (AF_INET or AF_INET6) for
// c, each witnessed by c's account, and returns them with their cookies;
// on error it has closed them all.
func (r *Router) newPoolSockets(c *container, n, family int) ([]int, []uint64, error) {
	fds := make([]int, 0, n)
	cookies := make([]uint64, 0, n)
	fail := func(err error) ([]int, []uint64, error) {
		closeAll(fds)
		return nil, nil, err
	}
	for range n {
		fd, err := newPoolSocket(family)
		if err != nil {
			if errors.Is(err, errClientFastOpenOff) {
				return fail(refuse(unix.EOPNOTSUPP, "%v", err))
			}
			return fail(refuse(unix.ENOBUFS, "%v", err))
		}
		fds = append(fds, fd)
		cookie, err := socketCookie(fd)
		if err == nil {
			err = c.pool.witness.add(fd, cookie)
		}
		if err != nil {
			return fail(refuse(unix.ENOBUFS, "%v: %v", errNoWitness, err))
		}
		cookies = append(cookies, cookie)
	}
	// Marked before any is handed out, all in one go (secure mode).
	if err := r.mode.markPool(c, fds, cookies); err != nil {
		return fail(refuse(unix.ENOBUFS, "%v", err))
	}
	return fds, cookies, nil
}

// listen gives a container's overlay listener a host listener, after
// checking with the kernel that the socket is a listening TCP socket of the
// caller's own network namespace, bound to its own address.
func (r *Router) listen(c *container, payload []byte, app int) (protocol.Message, []int, error) {
	backlog, err := protocol.ListenBacklog(payload)
	if err != nil {
		return protocol.Message{}, nil, refuse(unix.EINVAL, "%v", err)
	}
	overlayAddr, appCookie, family, flags, err := r.checkAppListener(c, app)
	if err != nil {
		return protocol.Message{}, nil, err
	}
	spec := hostListenerSpec{addr: netip.AddrPortFrom(r.self.Underlay, 0), family: family, backlog: backlog, app: app,
		mark: func(fd int) error { return r.mode.markListener(fd, overlayAddr) }}
	if v, err := unix.GetsockoptInt(app, unix.SOL_SOCKET, unix.SO_REUSEPORT); err == nil && v == 1 {
		spec.reusePort = true
		if group, ok := r.listeners.reuseGroup(overlayAddr, family, flags); ok {
			spec.addr = group
		}
	}
	fd, host, err := newHostListener(spec)
	if err != nil {
		return protocol.Message{}, nil, refuse(unix.ENOBUFS, "%v", err)
	}
	hostCookie, err := socketCookie(fd)
	if err != nil {
		unix.Close(fd)
		return protocol.Message{}, nil, refuse(unix.ENOBUFS, "host listener cookie: %v", err)
	}
	// Pending until the shim sees the app accept from it (PUBLISH).
	r.listeners.add(listener{Container: c.Name, Overlay: overlayAddr, Host: host, Family: family, Flags: flags, AppCookie: appCookie, HostCookie: hostCookie, ReusePort: spec.reusePort, Added: time.Now(), Pending: true})
	r.publish()
	// listen() returns once the peers' shims can find the listener, so a
	// client told about it at once (netperf's data port) is accelerated.
	r.cluster.WaitPublished(r.listeners.currentVersion())
	r.log.Debug("accelerated listener", "container", c.Name, "overlay", overlayAddr, "host", host)
	payloadOut := protocol.Listener{Overlay: overlayAddr, Host: r.mode.shimHostAddr(overlayAddr, host)}.Encode()
	return protocol.Message{Type: protocol.TypeListenOK, Payload: payloadOut}, []int{fd}, nil
}

// checkAppListener checks with the kernel that fd is a listening TCP
// socket of c's network namespace bound to c's overlay address (or to all
// addresses) and returns that address, the socket's cookie and its family.
// An AF_INET6 socket qualifies when it carries IPv4: bound to :: without
// IPV6_V6ONLY, or to c's address v4-mapped; its host listener is then an
// AF_INET6 one too, so accepted connections have the family the app made.
// With an IPv6 overlay, IPv6-only ones qualify as well (appListenerBind).
func (r *Router) checkAppListener(c *container, fd int) (netip.AddrPort, uint64, int, uint16, error) {
	return r.checkAppSocket(c, fd, protocol.TypeListen)
}

// checkAppSocket is checkAppListener for request t: LISTEN's socket must
// listen, RESERVE's is about to (it may not listen yet).
func (r *Router) checkAppSocket(c *container, fd int, t protocol.Type) (netip.AddrPort, uint64, int, uint16, error) {
	fail := func(errno unix.Errno, format string, args ...any) (netip.AddrPort, uint64, int, uint16, error) {
		return netip.AddrPort{}, 0, 0, 0, refuse(errno, t.String()+": "+format, args...)
	}
	family, err := checkTCPSocket(fd, t == protocol.TypeListen)
	if err != nil {
		return fail(unix.EINVAL, "%v", err)
	}
	ns, err := r.netnsOfSocket(fd)
	if err != nil {
		return fail(unix.EINVAL, "%v", err)
	}
	if ns != c.Netns {
		return fail(unix.EPERM, "the socket does not belong to container %s", c.Name)
	}
	bound, flags, err := r.appListenerBind(fd, c)
	if err != nil {
		return fail(unix.EINVAL, "%v", err)
	}
	if !bound.Addr().IsUnspecified() && bound.Addr() != c.Addr {
		return fail(unix.EADDRNOTAVAIL, "bound to %s, not to the container's overlay address %s", bound.Addr(), c.Addr)
	}
	cookie, err := socketCookie(fd)
	if err != nil {
		return fail(unix.EINVAL, "%v", err)
	}
	return netip.AddrPortFrom(c.Addr, bound.Port()), cookie, family, flags, nil
}

// unlisten withdraws a container's listener. The shim sends the host
// listener it was handed (the app's listening socket when it has none, or
// from an older shim): either cookie names the entry. The shim server
// closes the request's fd before it sends the OK, so a shim that waited for
// the OK knows the router holds no copy (that copy of an app's socket kept
// its port taken: EADDRINUSE for a server that closes and listens again).
func (r *Router) unlisten(c *container, fd int) (protocol.Message, []int, error) {
	cookie, err := socketCookie(fd)
	if err != nil {
		return protocol.Message{}, nil, refuse(unix.EINVAL, "UNLISTEN: not a socket: %v", err)
	}
	if r.listeners.removeWhere(func(l listener) bool {
		return l.Container == c.Name && (l.AppCookie == cookie || l.HostCookie == cookie)
	}) {
		r.publish()
		// The shim shuts its host listener down after the OK: by then
		// no peer sends a new client there.
		r.cluster.WaitPublished(r.listeners.currentVersion())
	}
	return protocol.Message{Type: protocol.TypeOK}, nil, nil
}
