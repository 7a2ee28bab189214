package controlapi

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
)

// TestListenPrivateAndStale: the control socket is root's only (0600)
// from the moment it exists; a stale socket left by a router that died
// is replaced; a socket another router serves is left alone.
func TestListenPrivateAndStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), control.SocketName)
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close() // the file stays, nobody serves it
	l, err := Listen(path, "")
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer l.Close()
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	if _, err := Listen(path, ""); err == nil || !strings.Contains(err.Error(), "another router is serving") {
		t.Errorf("Listen on a served socket: %v, want a refusal", err)
	}
	if _, err := Listen(path+"x", "no-such-group-of-slim"); err == nil || !strings.Contains(err.Error(), "group") {
		t.Errorf("Listen with an unknown group: %v, want an error naming the group", err)
	}
}

type source struct{}

func (source) Snapshot() control.Snapshot {
	return control.Snapshot{
		Router:     control.RouterHealth{Version: "test", Host: netip.MustParseAddr("198.18.0.1"), Uptime: time.Minute},
		Containers: []control.Container{{Name: "c1", Addr: netip.MustParseAddr("198.19.1.2"), Listeners: 2}},
	}
}

// TestServerRun: the control socket answers with the source's snapshot,
// the metrics endpoint with its counters; when ctx ends both listeners
// close and Run returns.
func TestServerRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), control.SocketName)
	cl, err := Listen(path, "")
	if err != nil {
		t.Fatal(err)
	}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &Server{Control: cl, API: &control.Server{Source: source{}, Log: log}, Metrics: ml, Log: log}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	snap, err := control.Fetch(ctx, path)
	if err != nil || snap.Router.Version != "test" || len(snap.Containers) != 1 {
		t.Fatalf("snapshot %+v, %v", snap, err)
	}
	resp, err := http.Get("http://" + ml.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"slim_router_uptime_seconds 60", `slim_accelerated_listeners{container="c1"} 2`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Error("the control socket still accepts")
	}
	if _, err := net.Dial("tcp", ml.Addr().String()); err == nil {
		t.Error("the metrics endpoint still accepts")
	}
}
