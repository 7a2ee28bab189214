package shimserver_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/router/shimserver"
	"github.com/slimnet/slim/router/shimserver/shimtest"
)

// The shim server in memory: a fake Handler (every caller is who the test
// says), the shim's end of a socketpair (shimtest). No root.

// fakeHandler serves every connection as owner: HELLO gets HELLO_OK,
// STATS is a note, a request with a descriptor gets OK, anything else
// what serve says (EOPNOTSUPP by default).
type fakeHandler struct {
	owner shimserver.Owner
	serve func(shimserver.Request) (*protocol.Message, []int)

	mu       sync.Mutex
	opened   int
	served   []shimserver.Request
	answered []protocol.Type
	ended    int
	// onAnswered, if set, runs in Answered.
	onAnswered func()
}

func (h *fakeHandler) Open(*net.UnixConn) shimserver.Session {
	h.mu.Lock()
	h.opened++
	h.mu.Unlock()
	return fakeSession{h}
}

type fakeSession struct{ h *fakeHandler }

func (s fakeSession) Owner() shimserver.Owner { return s.h.owner }

func (s fakeSession) Answered(req shimserver.Request) {
	if s.h.onAnswered != nil {
		s.h.onAnswered()
	}
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.answered = append(s.h.answered, req.Type)
}

func (s fakeSession) End() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	s.h.ended++
}

func (s fakeSession) Serve(req shimserver.Request) (*protocol.Message, []int) {
	s.h.mu.Lock()
	s.h.served = append(s.h.served, req)
	s.h.mu.Unlock()
	if s.h.serve != nil {
		return s.h.serve(req)
	}
	switch req.Type {
	case protocol.TypeHello:
		return &protocol.Message{Type: protocol.TypeHelloOK, ID: req.ID}, nil
	case protocol.TypeStats:
		return nil, nil
	}
	m := shimserver.ErrorMessage(req.ID, unix.EOPNOTSUPP, "not in this test")
	return &m, nil
}

func (h *fakeHandler) requests() []shimserver.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]shimserver.Request(nil), h.served...)
}

var container = shimserver.Owner{Container: "c1"}

func newServer(h shimserver.Handler, limits shimserver.Limits) *shimserver.Server {
	if limits == (shimserver.Limits{}) {
		limits = shimserver.Limits{Containers: 4096, Strangers: 16}
	}
	return shimserver.New(h, limits, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func hello(id uint32) protocol.Message { return protocol.Message{Type: protocol.TypeHello, ID: id} }

// TestHelloAndNotes: a request is answered with its ID; a note (STATS)
// gets no reply, and the next request is answered.
func TestHelloAndNotes(t *testing.T) {
	h := &fakeHandler{owner: container}
	s := newServer(h, shimserver.Limits{})
	shim, _ := shimtest.Connect(t, s.ServeConn)
	if r := shim.Call(hello(7)); r.Type != protocol.TypeHelloOK || r.ID != 7 {
		t.Fatalf("HELLO: %+v", r)
	}
	shim.Send(protocol.Message{Type: protocol.TypeStats, ID: 8, Payload: protocol.Stats{}.Encode()}.Encode())
	if r := shim.Call(hello(9)); r.Type != protocol.TypeHelloOK || r.ID != 9 {
		t.Fatalf("HELLO after a note: %+v (a note got a reply?)", r)
	}
	if got := len(h.requests()); got != 3 {
		t.Errorf("the handler saw %d requests, want 3", got)
	}
}

// TestAnsweredAfterReplyAndEndOnce: Answered runs for each request
// answered, after its reply is sent (the shim has it while Answered still
// works), not for a note; End runs once when the connection ends.
func TestAnsweredAfterReplyAndEndOnce(t *testing.T) {
	release := make(chan struct{})
	h := &fakeHandler{owner: container, onAnswered: func() { <-release }}
	s := newServer(h, shimserver.Limits{})
	shim, done := shimtest.Connect(t, s.ServeConn)
	// Answered of the first HELLO waits for release: the reply came before.
	if r := shim.Call(hello(1)); r.Type != protocol.TypeHelloOK {
		t.Fatalf("HELLO: %+v", r)
	}
	close(release)
	shim.Send(protocol.Message{Type: protocol.TypeStats, ID: 2, Payload: protocol.Stats{}.Encode()}.Encode())
	shim.Call(hello(3))
	shim.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not done 5 s after the shim closed it")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.answered) != 2 || h.answered[0] != protocol.TypeHello || h.answered[1] != protocol.TypeHello {
		t.Errorf("Answered ran for %v, want the two HELLOs", h.answered)
	}
	if h.ended != 1 {
		t.Errorf("End ran %d times, want once", h.ended)
	}
}

// TestShimEmptyDatagramGetsError: an empty datagram is a malformed request: it
// gets an ERROR and the connection goes on; a descriptor riding on it is
// closed by the server. A zero-length read used to be taken for the end
// of the connection (and the descriptor was kept).
func TestShimEmptyDatagramGetsError(t *testing.T) {
	s := newServer(&fakeHandler{owner: container}, shimserver.Limits{})
	shim, _ := shimtest.Connect(t, s.ServeConn)
	shim.Send(nil)
	reply, err := shim.Receive(5 * time.Second)
	if err != nil || reply.Type != protocol.TypeError || reply.Errno != int32(unix.EPROTO) || !strings.Contains(reply.Text, "empty") {
		t.Fatalf("empty datagram: %+v, %v; want ERROR EPROTO saying it is empty", reply, err)
	}
	read, write := shimtest.Pipe(t)
	shim.Send(nil, write)
	unix.Close(write)
	if reply, err := shim.Receive(5 * time.Second); err != nil || reply.Type != protocol.TypeError {
		t.Fatalf("empty datagram with a descriptor: %+v, %v; want ERROR", reply, err)
	}
	if !shimtest.ClosedEverywhere(read) {
		t.Error("the server kept the descriptor of an empty datagram")
	}
	if reply := shim.Call(hello(3)); reply.Type != protocol.TypeHelloOK || reply.ID != 3 {
		t.Errorf("HELLO after empty datagrams: %+v", reply)
	}
}

// header is a message header as a shim would write it, with the given
// fields.
func header(magic uint32, version, typ uint16, id, length uint32) []byte {
	b := make([]byte, protocol.HeaderSize)
	binary.LittleEndian.PutUint32(b, magic)
	binary.LittleEndian.PutUint16(b[4:], version)
	binary.LittleEndian.PutUint16(b[6:], typ)
	binary.LittleEndian.PutUint32(b[8:], id)
	binary.LittleEndian.PutUint32(b[12:], length)
	return b
}

// TestMalformedRequests: whatever a process sends, a malformed request
// gets an ERROR EPROTO (with its ID when the ID could be read), never
// reaches the handler, loses no descriptor, and the connection goes on.
func TestMalformedRequests(t *testing.T) {
	tests := []struct {
		name   string
		msg    []byte
		fds    int
		id     uint32
		saying string
	}{
		{"shorter than a header", []byte("SLIM"), 0, 0, "shorter than"},
		{"bad magic", header(0xdeadbeef, protocol.Version, uint16(protocol.TypeHello), 5, 0), 0, 0, "bad magic"},
		{"another version", header(protocol.Magic, 9, uint16(protocol.TypeHello), 5, 0), 0, 5, "version 9"},
		{"unknown type", header(protocol.Magic, protocol.Version, 0x77, 6, 0), 0, 6, "unknown"},
		{"length beyond the payload", header(protocol.Magic, protocol.Version, uint16(protocol.TypeHello), 7, 4), 0, 7, "payload bytes"},
		{"longer than any message", append(header(protocol.Magic, protocol.Version, uint16(protocol.TypeHello), 8, protocol.MaxPayload+1), make([]byte, protocol.MaxPayload+1)...), 0, 0, "longer than"},
		{"two descriptors", hello(9).Encode(), 2, 0, "more than 1 descriptors"},
	}
	h := &fakeHandler{owner: container}
	s := newServer(h, shimserver.Limits{})
	shim, _ := shimtest.Connect(t, s.ServeConn)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reads, writes []int
			for range tt.fds {
				r, w := shimtest.Pipe(t)
				reads, writes = append(reads, r), append(writes, w)
			}
			shim.Send(tt.msg, writes...)
			shimtest.CloseAll(writes)
			reply, err := shim.Receive(5 * time.Second)
			if err != nil || reply.Type != protocol.TypeError || reply.Errno != int32(unix.EPROTO) || reply.ID != tt.id || !strings.Contains(reply.Text, tt.saying) {
				t.Fatalf("reply %+v, %v; want ERROR EPROTO id %d saying %q", reply, err, tt.id, tt.saying)
			}
			for _, r := range reads {
				if !shimtest.ClosedEverywhere(r) {
					t.Error("the server kept a descriptor of a malformed request")
				}
			}
		})
	}
	if got := h.requests(); len(got) != 0 {
		t.Errorf("the handler saw %d malformed requests", len(got))
	}
	if r := shim.Call(hello(10)); r.Type != protocol.TypeHelloOK {
		t.Errorf("HELLO after malformed requests: %+v", r)
	}
}

// TestDescriptorsClosedAfterReply: the server closes the descriptors a
// request brought once it is answered, and those of the reply once sent;
// the shim gets its own copies.
func TestDescriptorsClosedAfterReply(t *testing.T) {
	replyRead, replyWrite := shimtest.Pipe(t)
	h := &fakeHandler{owner: container, serve: func(req shimserver.Request) (*protocol.Message, []int) {
		if len(req.FDs) != 1 {
			t.Errorf("the handler got %d descriptors, want 1", len(req.FDs))
		}
		return &protocol.Message{Type: protocol.TypeOK, ID: req.ID}, []int{replyWrite}
	}}
	s := newServer(h, shimserver.Limits{})
	shim, _ := shimtest.Connect(t, s.ServeConn)
	reqRead, reqWrite := shimtest.Pipe(t)
	shim.Send(protocol.Message{Type: protocol.TypeUnlisten, ID: 4}.Encode(), reqWrite)
	unix.Close(reqWrite)
	reply, err := shim.Receive(5 * time.Second)
	if err != nil || reply.Type != protocol.TypeOK || len(reply.FDs) != 1 {
		t.Fatalf("reply %+v, %v; want OK with one descriptor", reply, err)
	}
	if !shimtest.ClosedEverywhere(reqRead) {
		t.Error("the server kept the request's descriptor")
	}
	if shimtest.ClosedEverywhere(replyRead) {
		t.Fatal("the shim's copy of the reply's descriptor is closed")
	}
	unix.Close(reply.FDs[0])
	// The server closes its copy just after sending the reply.
	if !shimtest.ClosedWithin(replyRead, 2*time.Second) {
		t.Error("the server kept the reply's descriptor")
	}
}

// TestShimConnectionsBounded: a container holds at most Limits.Containers
// connections: more are refused with an ERROR that says why and closed;
// the ones it holds keep working; a closed one frees its place.
func TestShimConnectionsBounded(t *testing.T) {
	s := newServer(&fakeHandler{owner: container}, shimserver.Limits{Containers: 8, Strangers: 1})
	var served, refused int
	var kept []*shimtest.Shim
	for i := range 20 {
		// A shim's first request is there when the router accepts.
		shim, _ := shimtest.Connect(t, s.ServeConn, hello(uint32(i+1)).Encode())
		reply, err := shim.Receive(5 * time.Second)
		if err != nil {
			t.Fatalf("connection %d: no reply: %v", i, err)
		}
		switch {
		case reply.Type == protocol.TypeHelloOK:
			served++
			kept = append(kept, shim)
		case reply.Type == protocol.TypeError && reply.Errno == int32(unix.EUSERS) && strings.Contains(reply.Text, "limits.shim_connections") && reply.ID == uint32(i+1):
			refused++
			if _, err := shim.Receive(5 * time.Second); err == nil {
				t.Error("a refused connection stays open")
			}
		default:
			t.Errorf("connection %d: %+v", i, reply)
		}
	}
	if served != 8 || refused != 12 {
		t.Errorf("of 20 connections %d served, %d refused; want 8 and 12", served, refused)
	}
	if r := kept[0].Call(hello(100)); r.Type != protocol.TypeHelloOK {
		t.Errorf("a held connection after the refusals: %+v", r)
	}
	kept[1].Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		shim, _ := shimtest.Connect(t, s.ServeConn, hello(101).Encode())
		if r, err := shim.Receive(5 * time.Second); err == nil && r.Type == protocol.TypeHelloOK {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("a closed connection did not free its place")
}

// TestStrangerConnectionsBounded: a caller in no registered container (a
// local user on the host) holds at most Limits.Strangers connections,
// counted by user; another user has a share of its own.
func TestStrangerConnectionsBounded(t *testing.T) {
	const limit = 16
	h := &fakeHandler{owner: shimserver.Owner{UID: 1000}}
	s := newServer(h, shimserver.Limits{Containers: 4096, Strangers: limit})
	var refused int
	for i := range limit + 10 {
		shim, _ := shimtest.Connect(t, s.ServeConn, hello(uint32(i+1)).Encode())
		reply, err := shim.Receive(5 * time.Second)
		if err != nil {
			t.Fatalf("connection %d: no reply: %v", i, err)
		}
		if reply.Type == protocol.TypeError && reply.Errno == int32(unix.EUSERS) && strings.Contains(reply.Text, "uid 1000") {
			refused++
		}
	}
	if refused != 10 {
		t.Errorf("%d of a stranger's %d connections refused, want 10", refused, limit+10)
	}
	other := newServer(&fakeHandler{owner: shimserver.Owner{UID: 1001}}, shimserver.Limits{Containers: 4096, Strangers: limit})
	shim, _ := shimtest.Connect(t, other.ServeConn)
	if r := shim.Call(hello(1)); r.Type != protocol.TypeHelloOK {
		t.Errorf("another user: %+v", r)
	}
}

// TestRefusedConnectionWithoutRequest: a refused connection that sends
// nothing gets an unsolicited ERROR (ID 0) and is closed at once.
func TestRefusedConnectionWithoutRequest(t *testing.T) {
	s := newServer(&fakeHandler{owner: container}, shimserver.Limits{Containers: 1, Strangers: 1})
	first, _ := shimtest.Connect(t, s.ServeConn)
	first.Call(hello(1))
	second, done := shimtest.Connect(t, s.ServeConn)
	reply, err := second.Receive(5 * time.Second)
	if err != nil || reply.Type != protocol.TypeError || reply.ID != 0 || reply.Errno != int32(unix.EUSERS) {
		t.Fatalf("refused connection: %+v, %v; want an unsolicited ERROR EUSERS", reply, err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the server keeps a refused connection")
	}
}

// TestIdleShimConnections: a connection that sends nothing is dropped after
// IdleTimeout; a container's that completed a request (a shim's, kept
// for the life of its thread) is not; a stranger's is, even after a
// request.
func TestIdleShimConnections(t *testing.T) {
	s := newServer(&fakeHandler{owner: container}, shimserver.Limits{})
	silent, silentDone := shimtest.Connect(t, s.ServeConn)
	working, workingDone := shimtest.Connect(t, s.ServeConn)
	working.Call(hello(1))
	strangers := newServer(&fakeHandler{owner: shimserver.Owner{UID: 1000}}, shimserver.Limits{})
	stranger, strangerDone := shimtest.Connect(t, strangers.ServeConn)
	stranger.Call(hello(1))
	for what, done := range map[string]<-chan struct{}{"a connection that never sent a request": silentDone, "a stranger's idle connection": strangerDone} {
		select {
		case <-done:
		case <-time.After(shimserver.IdleTimeout + 10*time.Second):
			t.Fatalf("%s is still served", what)
		}
	}
	select {
	case <-workingDone:
		t.Fatal("a shim's idle connection was dropped")
	case <-time.After(2 * time.Second):
	}
	if _, err := silent.Receive(time.Second); err == nil {
		t.Error("the silent connection got a reply")
	}
	if reply := working.Call(hello(2)); reply.Type != protocol.TypeHelloOK {
		t.Errorf("the shim's connection after %v idle: %+v", shimserver.IdleTimeout, reply)
	}
}

// TestHandlerPanicDropsConnection: a handler that panics costs its
// connection only; the server serves the next one.
func TestHandlerPanicDropsConnection(t *testing.T) {
	var logs syncBuffer
	h := &fakeHandler{owner: container, serve: func(req shimserver.Request) (*protocol.Message, []int) {
		if req.ID == 13 {
			panic("unlucky")
		}
		return &protocol.Message{Type: protocol.TypeHelloOK, ID: req.ID}, nil
	}}
	s := shimserver.New(h, shimserver.Limits{Containers: 1, Strangers: 1}, slog.New(slog.NewTextHandler(&logs, nil)))
	shim, done := shimtest.Connect(t, s.ServeConn)
	shim.Send(hello(13).Encode())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection of a panicking handler is still served")
	}
	if !strings.Contains(logs.String(), "panicked") {
		t.Errorf("log %q does not say the handler panicked", logs.String())
	}
	next, _ := shimtest.Connect(t, s.ServeConn)
	if r := next.Call(hello(14)); r.Type != protocol.TypeHelloOK {
		t.Errorf("the next connection (its place freed): %+v", r)
	}
}

// TestStopDrains: Stop lets a request in progress finish (its reply
// arrives), then ends every connection, idle ones included, and returns
// once all are done; a connection after Stop is closed at once.
func TestStopDrains(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := &fakeHandler{owner: container, serve: func(req shimserver.Request) (*protocol.Message, []int) {
		if req.ID == 1 {
			close(started)
			<-release
		}
		return &protocol.Message{Type: protocol.TypeHelloOK, ID: req.ID}, nil
	}}
	s := newServer(h, shimserver.Limits{})
	busy, busyDone := shimtest.Connect(t, s.ServeConn)
	idle, idleDone := shimtest.Connect(t, s.ServeConn)
	idle.Call(hello(2))
	busy.Send(hello(1).Encode())
	<-started
	stopped := make(chan struct{})
	go func() { defer close(stopped); s.Stop() }()
	select {
	case <-idleDone:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end an idle connection")
	}
	select {
	case <-stopped:
		t.Fatal("Stop returned while a request was in progress")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r, err := busy.Receive(5 * time.Second); err != nil || r.Type != protocol.TypeHelloOK || r.ID != 1 {
		t.Fatalf("the request in progress at Stop: %+v, %v; want its reply", r, err)
	}
	for what, ch := range map[string]<-chan struct{}{"Stop": stopped, "the busy connection": busyDone} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not end after the request in progress", what)
		}
	}
	late, lateDone := shimtest.Connect(t, s.ServeConn, hello(3).Encode())
	select {
	case <-lateDone:
	case <-time.After(5 * time.Second):
		t.Fatal("a connection after Stop is served")
	}
	if _, err := late.Receive(time.Second); err == nil {
		t.Error("a connection after Stop got a reply")
	}
}

// TestServeOwnsItsConnections: Serve accepts on a unix SEQPACKET
// listener; when ctx ends it closes the listener, ends every connection
// and returns only then.
func TestServeOwnsItsConnections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "router.sock")
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHandler{owner: container}
	s := newServer(h, shimserver.Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, l) }()
	var conns []*net.UnixConn
	for i := range 5 {
		conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write(hello(uint32(i + 1)).Encode())
		buf := make([]byte, protocol.MaxMessage)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn.Read(buf); err != nil || !bytes.Equal(buf[:n], protocol.Message{Type: protocol.TypeHelloOK, ID: uint32(i + 1)}.Encode()) {
			t.Fatalf("connection %d: % x, %v", i, buf[:n], err)
		}
		conns = append(conns, conn)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ctx ended")
	}
	for i, conn := range conns {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := conn.Read(make([]byte, 64)); err == nil && n > 0 {
			t.Errorf("connection %d got %d bytes after the stop", i, n)
		}
	}
	if _, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"}); err == nil {
		t.Error("the listener still accepts after Serve returned")
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
