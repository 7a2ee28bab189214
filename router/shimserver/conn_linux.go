package shimserver

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// maxFdsIn is the most descriptors a request carries; room for one more
// lets the server see that a request brought too many.
const maxFdsIn = 1

// ReplyTimeout bounds how long a reply may wait for a shim that does not
// read, so that it cannot pin a goroutine forever.
const ReplyTimeout = 2 * time.Second

// refusalWait is how long a refused connection may take to send its first
// request, which gets the refusal as its reply. A shim sends it as it
// connects, before the router accepts; a flood of refused connections
// holds the router's descriptors no longer than this.
const refusalWait = 2 * time.Millisecond

var errDisconnected = errors.New("shim disconnected")

// serveConn serves one connection until the shim closes it, goes idle
// past its deadline, or the server stops.
func (s *Server) serveConn(conn *net.UnixConn) {
	defer conn.Close()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("shim handler panicked; connection dropped", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	session := s.handler.Open(conn)
	defer session.End()
	owner := session.Owner()
	buf := make([]byte, protocol.MaxMessage+1)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace((maxFdsIn+1)*4))
	if err := s.counts.admit(owner, s.limits); err != nil {
		s.log.Debug("refusing shim connection", "container", owner.Container, "uid", owner.UID, "err", err)
		refuseConnection(conn, buf, oob, err)
		return
	}
	defer s.counts.release(owner)
	if err := passCredentials(conn); err != nil {
		s.log.Error("shim connection", "err", err)
		return
	}
	completed := false
	for s.setReadDeadline(conn, readDeadline(owner, completed, time.Now())) {
		req, err := readRequest(conn, buf, oob)
		if errors.Is(err, errDisconnected) {
			return
		}
		if err != nil {
			s.replyError(conn, err)
			continue
		}
		completed = true
		reply, fds := session.Serve(req)
		closeAll(req.FDs)
		if reply == nil {
			continue // a one-way note
		}
		err = writeReply(conn, *reply, fds)
		closeAll(fds)
		if err != nil {
			return
		}
		session.Answered(req)
	}
}

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
		closeAll(req.FDs)
	case errors.As(err, &de) && de.HasID:
		id = de.ID
	}
	_ = writeReply(conn, ErrorMessage(id, ErrnoOf(why), why.Error()), nil)
}

// readRequest reads and decodes one datagram. Descriptors beyond what any
// request carries are closed at once. The connection must pass
// credentials (passCredentials): an empty datagram comes with them and is
// malformed, the end of the connection comes without.
func readRequest(conn *net.UnixConn, buf, oob []byte) (Request, error) {
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	fds, cmsgErr := parseRights(oob[:oobn])
	fail := func(e error) (Request, error) {
		closeAll(fds)
		return Request{}, e
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
	return Request{Message: msg, FDs: fds}, nil
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
	conn.SetWriteDeadline(time.Now().Add(ReplyTimeout))
	_, _, err := conn.WriteMsgUnix(m.Encode(), oob, nil)
	return err
}

// replyError answers a request that could not be decoded.
func (s *Server) replyError(conn *net.UnixConn, err error) {
	var de *protocol.DecodeError
	id := uint32(0)
	if errors.As(err, &de) && de.HasID {
		id = de.ID
	}
	s.log.Debug("refusing malformed request", "err", err)
	_ = writeReply(conn, ErrorMessage(id, unix.EPROTO, err.Error()), nil)
}

// passCredentials turns SO_PASSCRED on: every datagram then comes with
// the sender's credentials, an empty one too, so that the server can tell
// an empty datagram (which gets an ERROR) from the end of the connection
// (a zero-length read either way on SOCK_SEQPACKET).
func passCredentials(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var optErr error
	if err := raw.Control(func(fd uintptr) {
		optErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	if optErr != nil {
		return fmt.Errorf("SO_PASSCRED: %w", optErr)
	}
	return nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
