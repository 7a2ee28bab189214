package router

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/acceptloop"
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
// thousands of idle shims cost memory, not threads. A failed accept
// (EMFILE: some caller holds many connections) pauses the loop; it never
// ends it.
func (r *Router) serveShims() {
	acceptloop.Run("shim connection", r.log, r.socket.AcceptUnix, func(conn *net.UnixConn) {
		go r.serveShim(conn)
	})
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
	owner := ownerOf(who, idErr)
	buf := make([]byte, protocol.MaxMessage+1)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace((maxFdsIn+1)*4))
	if err := r.shimConns.admit(owner, r.limits()); err != nil {
		r.log.Debug("refusing shim connection", "pid", who.PID, "uid", who.UID, "err", err)
		refuseConnection(conn, buf, oob, err)
		return
	}
	defer r.shimConns.release(owner)
	if err := passCredentials(conn); err != nil {
		r.log.Error("shim connection", "err", err)
		return
	}
	completed := false
	for {
		conn.SetReadDeadline(readDeadline(owner, completed, time.Now()))
		req, err := readRequest(conn, buf, oob)
		if errors.Is(err, errDisconnected) {
			return
		}
		if err != nil {
			r.replyError(conn, err)
			continue
		}
		completed = true
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

// refusalWait is how long a refused connection may take to send its first
// request, which gets the refusal as its reply. A shim sends it as it
// connects, before the router accepts; a flood of refused connections
// holds the router's descriptors no longer than this.
const refusalWait = 2 * time.Millisecond

// refuseConnection answers the connection's first request, if it comes
// within refusalWait, with an ERROR saying why the connection is refused
// (an unsolicited one, ID 0, otherwise); the caller then closes it.
func refuseConnection(conn *net.UnixConn, buf, oob []byte, why error) {
	var id uint32
	conn.SetReadDeadline(time.Now().Add(refusalWait))
	req, err := readRequest(conn, buf, oob)
	var de *protocol.DecodeError
	switch {
	case err == nil:
		id = req.ID
		closeAll(req.fds)
	case errors.As(err, &de) && de.HasID:
		id = de.ID
	}
	_ = writeReply(conn, errorMessage(id, unix.EUSERS, why.Error()), nil)
}

// readRequest reads and decodes one datagram. Descriptors beyond what any
// request carries are closed at once. The connection must pass
// credentials (passCredentials): an empty datagram comes with them and is
// malformed, the end of the connection comes without.
func readRequest(conn *net.UnixConn, buf, oob []byte) (request, error) {
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	fds, cmsgErr := parseRights(oob[:oobn])
	fail := func(e error) (request, error) {
		closeAll(fds)
		return request{}, e
	}
	// Go reports a zero-length read on SOCK_SEQPACKET as io.EOF.
	empty := n == 0 && oobn > 0 && (err == nil || errors.Is(err, io.EOF))
	switch {
	case empty:
		return fail(&protocol.DecodeError{Reason: "empty message"})
	case err != nil || n == 0:
		return fail(errDisconnected)
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
