// Package shimtest is a shim for tests: the client end of a shim
// connection on a SEQPACKET socketpair, whose other end a test serves
// with shimserver.Server.ServeConn. No root, no listener, no namespace.
package shimtest

import (
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// Shim is the shim's end of a connection.
type Shim struct {
	*net.UnixConn
	t testing.TB
}

// Reply is a reply as a shim reads it; the test owns its descriptors
// (closed at the test's end).
type Reply struct {
	protocol.Message
	FDs   []int
	Errno int32  // of an ERROR
	Text  string // of an ERROR
}

// Connect makes a socketpair, sends the datagrams in first (they are
// there when the server starts on its end, as a shim's first request is
// when the router accepts), and serves the other end with serve in a
// goroutine. It returns the shim's end and a channel closed when serve
// returns. At the test's end the shim's end is closed and serve must
// return within 10 s.
func Connect(t testing.TB, serve func(*net.UnixConn), first ...[]byte) (*Shim, <-chan struct{}) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*net.UnixConn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "shim-pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c.(*net.UnixConn)
	}
	shim := &Shim{UnixConn: conns[0], t: t}
	for _, b := range first {
		shim.Send(b)
	}
	done := make(chan struct{})
	go func() { defer close(done); serve(conns[1]) }()
	t.Cleanup(func() {
		shim.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the server still serves a connection 10 s after the shim closed it")
		}
	})
	return shim, done
}

// Send writes one datagram with descriptors.
func (s *Shim) Send(b []byte, fds ...int) {
	s.t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := s.WriteMsgUnix(b, oob, nil); err != nil {
		s.t.Fatalf("sending %d bytes: %v", len(b), err)
	}
}

// Receive reads one reply within timeout.
func (s *Shim) Receive(timeout time.Duration) (Reply, error) {
	s.t.Helper()
	buf := make([]byte, protocol.MaxMessage)
	oob := make([]byte, unix.CmsgSpace(protocol.MaxPool*4))
	s.SetReadDeadline(time.Now().Add(timeout))
	n, oobn, _, _, err := s.ReadMsgUnix(buf, oob)
	if err != nil {
		return Reply{}, err
	}
	var r Reply
	if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, c := range cmsgs {
			fds, _ := unix.ParseUnixRights(&c)
			r.FDs = append(r.FDs, fds...)
		}
	}
	s.t.Cleanup(func() { CloseAll(r.FDs) })
	if n == 0 {
		return Reply{}, os.ErrClosed // the server closed the connection
	}
	if r.Message, err = protocol.Decode(buf[:n]); err != nil {
		s.t.Fatalf("reply: %v", err)
	}
	if r.Type == protocol.TypeError {
		r.Errno, r.Text, _ = protocol.DecodeErrorPayload(r.Payload)
	}
	return r, nil
}

// Call sends a request and reads its reply (within 5 s).
func (s *Shim) Call(m protocol.Message) Reply {
	s.t.Helper()
	s.Send(m.Encode())
	r, err := s.Receive(5 * time.Second)
	if err != nil {
		s.t.Fatalf("%v: no reply: %v", m.Type, err)
	}
	return r
}

// Pipe returns a pipe's read and write ends, closed at the test's end
// unless closed before.
func Pipe(t testing.TB) (read, write int) {
	t.Helper()
	p := make([]int, 2)
	if err := unix.Pipe2(p, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]) })
	return p[0], p[1]
}

// ClosedEverywhere reports whether every write end of the pipe whose read
// end is given is closed: reading then gives EOF at once.
func ClosedEverywhere(read int) bool {
	unix.SetNonblock(read, true)
	n, err := unix.Read(read, make([]byte, 1))
	return n == 0 && err == nil
}

// CloseAll closes descriptors.
func CloseAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// ClosedWithin reports whether every write end of the pipe whose read end
// is given is closed within d: for a descriptor the other side closes
// after an event the caller has seen (a reply it sent).
func ClosedWithin(read int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !ClosedEverywhere(read) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
