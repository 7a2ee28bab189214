package router

import (
	"bytes"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
)

// containerTestRouter is a router with the given config containers, as New
// builds it up to registerContainers (no sockets, no overlay). Its log is
// kept (logOf).
func containerTestRouter(t *testing.T, containers []ContainerConfig) *Router {
	t.Helper()
	config := Config{
		Dir: t.TempDir(), Overlay: "198.19.0.0/16", HostBits: 24,
		Hosts:      []HostConfig{{Underlay: "198.18.0.1", Subnet: "198.19.1.0/24"}},
		Containers: containers,
	}
	plan, err := config.Plan()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	r := newRouter(config, plan, nil, slog.New(slog.NewTextHandler(logs, nil)))
	r.version = "test"
	testLogs.Store(r, logs)
	t.Cleanup(func() {
		for _, c := range r.containers.list() {
			c.releaseNow()
		}
		testLogs.Delete(r)
	})
	return r
}

var testLogs sync.Map // *Router → *lockedBuffer

func logOf(r *Router) string {
	b, _ := testLogs.Load(r)
	return b.(*lockedBuffer).String()
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func mustParseAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
