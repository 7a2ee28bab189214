package control

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSource counts the snapshots it serves and carries n connections.
type fakeSource struct {
	n     int
	calls atomic.Int64
}

func (f *fakeSource) Snapshot() Snapshot {
	f.calls.Add(1)
	s := Snapshot{Time: time.Unix(1700000000, 0).UTC(), Router: RouterHealth{Version: "test"}}
	for i := range f.n {
		s.Connections = append(s.Connections, Connection{
			Cookie: uint64(i), Container: "h1-c1", Role: RoleClient,
			Local: netip.MustParseAddrPort("198.19.1.2:40000"), BytesIn: uint64(i),
		})
	}
	return s
}

// startServer serves src on a socket in a temporary directory.
func startServer(t *testing.T, src Source) (string, *Server) {
	t.Helper()
	return serveTest(t, &Server{Source: src})
}

// serveTest serves s on a socket in a temporary directory.
func serveTest(t *testing.T, s *Server) (string, *Server) {
	t.Helper()
	path := filepath.Join(t.TempDir(), SocketName)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path, s
}

// rawSession sends lines and reads replies without the client's help.
type rawSession struct {
	t     *testing.T
	conn  net.Conn
	lines *bufio.Scanner
}

func dialRaw(t *testing.T, path string) *rawSession {
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	lines := bufio.NewScanner(conn)
	lines.Buffer(nil, 64<<20)
	return &rawSession{t: t, conn: conn, lines: lines}
}

func (s *rawSession) ask(line string) Reply {
	s.t.Helper()
	if _, err := s.conn.Write([]byte(line + "\n")); err != nil {
		s.t.Fatal(err)
	}
	s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if !s.lines.Scan() {
		s.t.Fatalf("no reply to %q: %v", line, s.lines.Err())
	}
	var r Reply
	if err := json.Unmarshal(s.lines.Bytes(), &r); err != nil {
		s.t.Fatalf("reply %q: %v", s.lines.Text(), err)
	}
	if r.Version != Version {
		s.t.Errorf("reply version %d, want %d", r.Version, Version)
	}
	return r
}

func TestSnapshotAndEmptyLists(t *testing.T) {
	path, _ := startServer(t, &fakeSource{})
	s := dialRaw(t, path)
	r := s.ask(`{"version":1,"op":"snapshot"}`)
	if !r.OK || r.Snapshot == nil || r.Snapshot.Router.Version != "test" {
		t.Fatalf("reply = %+v, want a snapshot", r)
	}
	// Lists are arrays, never null, policy included.
	raw := s.ask(`{"version":1,"op":"snapshot"}`)
	line, _ := json.Marshal(raw)
	for _, key := range []string{`"policy":[]`, `"connections":[]`, `"peers":[]`, `"fallbacks":{}`} {
		if !strings.Contains(string(line), key) {
			t.Errorf("snapshot %s lacks %s", line, key)
		}
	}
}

func TestBadRequestsGetErrorsAndTheSessionGoesOn(t *testing.T) {
	path, _ := startServer(t, &fakeSource{})
	s := dialRaw(t, path)
	for line, want := range map[string]string{
		`not json`:                      "malformed request",
		`{"version":1`:                  "malformed request",
		`[1,2]`:                         "malformed request",
		`null`:                          "version 0",
		`{"version":2,"op":"snapshot"}`: "version 2 is not supported",
		`{"version":1,"op":"reboot"}`:   `unknown op "reboot"`,
		`{"version":1}`:                 `no "op"`,
		`{"version":1,"op":"watch","interval_ms":-5}`:  "negative",
		`{"version":1,"op":"watch","intervall_ms":50}`: `unknown field "intervall_ms"`,
		`{"version":1,"op":"snapshot","verbose":true}`: `unknown field "verbose"`,
	} {
		r := s.ask(line)
		if r.OK || !strings.Contains(r.Error, want) {
			t.Errorf("%s: reply %+v, want an error containing %q", line, r, want)
		}
	}
	if r := s.ask(`{"version":1,"op":"snapshot"}`); !r.OK {
		t.Errorf("after bad requests: %+v, want a snapshot", r)
	}
}

func TestTooLongLineEndsSession(t *testing.T) {
	path, _ := startServer(t, &fakeSource{})
	s := dialRaw(t, path)
	r := s.ask(strings.Repeat("x", MaxRequestLine+10))
	if r.OK || !strings.Contains(r.Error, "longer than") {
		t.Errorf("reply %+v, want a too-long error", r)
	}
	// A new session works.
	if r := dialRaw(t, path).ask(`{"version":1,"op":"snapshot"}`); !r.OK {
		t.Errorf("new session: %+v", r)
	}
}

func TestWatchStreamsAtInterval(t *testing.T) {
	src := &fakeSource{n: 2}
	path, _ := startServer(t, src)
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Watch(10 * time.Millisecond); err != nil { // raised to MinInterval
		t.Fatal(err)
	}
	start := time.Now()
	for range 3 {
		snap, err := c.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Connections) != 2 {
			t.Errorf("watch snapshot has %d connections, want 2", len(snap.Connections))
		}
	}
	if elapsed := time.Since(start); elapsed < 2*MinInterval-20*time.Millisecond {
		t.Errorf("3 watch snapshots in %v: the interval was not raised to %v", elapsed, MinInterval)
	}
}

func TestWatchEndsWhenClientGoes(t *testing.T) {
	src := &fakeSource{}
	path, s := startServer(t, src)
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	c.Watch(MinInterval)
	if _, err := c.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitSessions(t, s, 0, 2*time.Second)
	calls := src.calls.Load()
	time.Sleep(3 * MinInterval)
	if src.calls.Load() != calls {
		t.Errorf("the server kept taking snapshots for a client that left")
	}
}

// TestClientThatNeverReads: a watcher that never reads fills the socket
// buffer; the server drops it after WriteTimeout and serves others
// meanwhile.
func TestClientThatNeverReads(t *testing.T) {
	src := &fakeSource{n: 3000} // a few hundred KB per snapshot
	path, s := startServer(t, src)
	stuck := dialRaw(t, path)
	if _, err := stuck.conn.Write([]byte(`{"version":1,"op":"watch","interval_ms":100}` + "\n")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	snap, err := Fetch(context.Background(), path)
	if err != nil || len(snap.Connections) != 3000 {
		t.Fatalf("another client while one is stuck: %d connections, %v", len(snap.Connections), err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("another client waited %v", d)
	}
	waitSessions(t, s, 0, WriteTimeout+3*time.Second)
}

func TestConnectionListIsBounded(t *testing.T) {
	path, _ := startServer(t, &fakeSource{n: MaxConnections + 5})
	snap, err := Fetch(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Connections) != MaxConnections || snap.ConnectionsTruncated != 5 {
		t.Errorf("%d connections, %d truncated; want %d and 5", len(snap.Connections), snap.ConnectionsTruncated, MaxConnections)
	}
}

func TestWatcherRetries(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	w := &Watcher{Path: path, Interval: MinInterval, Retry: 50 * time.Millisecond}
	defer w.Close()
	ctx := context.Background()
	if _, err := w.Next(ctx); err == nil {
		t.Fatal("watching a socket nobody serves: no error")
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go (&Server{Source: &fakeSource{n: 1}}).Serve(sctx, l)
	snap, err := w.Next(ctx)
	if err != nil || len(snap.Connections) != 1 {
		t.Fatalf("after the router came up: %v, %+v", err, snap)
	}
}

func waitSessions(t *testing.T, s *Server, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		n := len(s.sessions)
		s.mu.Unlock()
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d control sessions after %v, want %d", n, timeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSetupQuantile(t *testing.T) {
	s := ShimStats{SetupBuckets: []uint64{0, 0, 0, 0, 0, 0, 90, 9, 1}} // 64µs: 90, 128µs: 9, ≥128µs: 1
	if q, ok := s.SetupQuantile(0.5); !ok || q != 64*time.Microsecond {
		t.Errorf("p50 = %v %v, want 64µs", q, ok)
	}
	if q, ok := s.SetupQuantile(0.99); !ok || q != 128*time.Microsecond {
		t.Errorf("p99 = %v %v, want 128µs", q, ok)
	}
	if q, ok := s.SetupQuantile(1); ok || q != 128*time.Microsecond {
		t.Errorf("p100 = %v %v, want ≥128µs (open bucket)", q, ok)
	}
	if _, ok := (ShimStats{}).SetupQuantile(0.5); ok {
		t.Error("quantile without data")
	}
}
