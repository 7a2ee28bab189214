package router

import (
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// maxFdsIn is the most descriptors a request carries; room for one more
// lets the router see that a request brought too many.
const maxFdsIn = 1

// replyTimeout bounds how long a reply may wait for a shim that does not
// read, so that it cannot pin a goroutine forever.
const replyTimeout = 2 * time.Second

// serveShims accepts shim connections until the socket is closed. Each
// connection gets a goroutine; the runtime multiplexes them on epoll, so
// thousands of idle shims cost memory, not threads.
func (r *Router) serveShims() {
	for {
		conn, err := r.socket.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.log.Error("accepting shim connection", "err", err)
			}
			return
		}
		go r.serveShim(conn)
	}
}

// request is one decoded shim request with the descriptors it carried.
type request struct {
	protocol.Message
	fds []int
}

func (r *Router) serveShim(conn *net.UnixConn) {
	defer conn.Close()
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("shim handler panicked; connection dropped", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	who, idErr := r.identify(conn)
	buf := make([]byte, protocol.MaxMessage+1)
	oob := make([]byte, unix.CmsgSpace((maxFdsIn+1)*4))
	for {
		req, err := readRequest(conn, buf, oob)
		if errors.Is(err, errDisconnected) {
			return
		}
		if err != nil {
			r.replyError(conn, err)
			continue
		}
		reply, fds := r.dispatch(who, idErr, req)
		closeAll(req.fds)
		if reply == nil {
			continue // a one-way note
		}
		err = writeReply(conn, *reply, fds)
		closeAll(fds)
		if err != nil {
			return
		}
	}
}

var errDisconnected = errors.New("shim disconnected")

// readRequest reads and decodes one datagram. Descriptors beyond what any
// request carries are closed at once.
func readRequest(conn *net.UnixConn, buf, oob []byte) (request, error) {
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil || (n == 0 && oobn == 0) {
		return request{}, errDisconnected
	}
	fds, cmsgErr := parseRights(oob[:oobn])
	fail := func(e error) (request, error) {
		closeAll(fds)
		return request{}, e
	}
	switch {
	case flags&unix.MSG_TRUNC != 0 || n > protocol.MaxMessage:
		return fail(&protocol.DecodeError{Reason: fmt.Sprintf("message longer than %d bytes", protocol.MaxMessage)})
	case flags&unix.MSG_CTRUNC != 0 || len(fds) > maxFdsIn:
		return fail(&protocol.DecodeError{Reason: fmt.Sprintf("more than %d descriptors", maxFdsIn)})
	case cmsgErr != nil:
		return fail(&protocol.DecodeError{Reason: cmsgErr.Error()})
	}
	msg, err := protocol.Decode(buf[:n])
	if err != nil {
		return fail(err)
	}
	return request{Message: msg, fds: fds}, nil
}

func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func writeReply(conn *net.UnixConn, m protocol.Message, fds []int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	conn.SetWriteDeadline(time.Now().Add(replyTimeout))
	_, _, err := conn.WriteMsgUnix(m.Encode(), oob, nil)
	return err
}

// replyError answers a request that could not be decoded.
func (r *Router) replyError(conn *net.UnixConn, err error) {
	var de *protocol.DecodeError
	id := uint32(0)
	if errors.As(err, &de) && de.HasID {
		id = de.ID
	}
	r.log.Debug("refusing malformed request", "err", err)
	_ = writeReply(conn, errorMessage(id, unix.EPROTO, err.Error()), nil)
}

func errorMessage(id uint32, errno unix.Errno, text string) protocol.Message {
	return protocol.Message{Type: protocol.TypeError, ID: id, Payload: protocol.ErrorPayload(int32(errno), text)}
}
