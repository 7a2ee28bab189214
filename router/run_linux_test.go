package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/protocol"
)

// loopbackRouter is a router as New makes it, without root: its sockets
// in a temporary DIR, its peer port on 127.0.0.1, this process's network
// namespace as its one container, plain mode (New's kernel steps, TCP
// Fast Open and secure mode, left out).
// Peers are other hosts of its cluster.
func loopbackRouter(t *testing.T, peers ...HostConfig) *Router {
	t.Helper()
	config := Config{
		Dir: t.TempDir(), Overlay: "198.19.0.0/16", HostBits: 24,
		Hosts:       append([]HostConfig{{Underlay: "127.0.0.1", Subnet: "198.19.1.0/24"}}, peers...),
		Containers:  []ContainerConfig{{Name: "self", Netns: "/proc/self/ns/net", Addr: "198.19.1.2"}},
		MetricsAddr: "127.0.0.1:0", InsecurePeers: true,
	}
	plan, err := config.Plan()
	if err != nil {
		t.Fatal(err)
	}
	r := newRouter(config, plan, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ino, err := namespaceInode("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := r.newPoolAccount()
	if err != nil {
		t.Fatal(err)
	}
	r.containers.add(&container{Name: "self", Addr: netip.MustParseAddr("198.19.1.2"), Netns: ino, Source: control.SourceConfig, pool: pool})
	if err := r.open(); err != nil {
		r.closeSockets()
		r.closeContainers()
		t.Fatal(err)
	}
	r.cluster = r.newCluster()
	t.Cleanup(func() { r.closeSockets(); r.closeContainers() })
	return r
}

// settledGoroutines waits until no more than n goroutines run, and says
// which run if more stay.
func settledGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines run after Run returned, %d before it started:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunOwnsEveryGoroutine: Run serves shims, the control API and the
// metrics, pushes to its peer (down) and sweeps; when ctx ends it ends
// every shim and control connection, closes and removes its sockets, and
// returns having ended every goroutine it started.
func TestRunOwnsEveryGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	r := loopbackRouter(t, HostConfig{Underlay: "127.0.0.2", Subnet: "198.19.2.0/24"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	shim, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: r.config.SocketPath(), Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer shim.Close()
	shim.Write(protocol.Message{Type: protocol.TypeHello, ID: 1}.Encode())
	buf := make([]byte, protocol.MaxMessage)
	shim.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := shim.Read(buf); err != nil {
		t.Fatalf("HELLO: %v", err)
	} else if m, err := protocol.Decode(buf[:n]); err != nil || m.Type != protocol.TypeHelloOK {
		t.Fatalf("HELLO: %v %v", m.Type, err)
	}
	watcher, err := control.Dial(ctx, r.config.ControlPath())
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	if snap, err := watcher.Snapshot(ctx); err != nil || len(snap.Peers) != 1 || len(snap.Containers) != 1 {
		t.Fatalf("control API: %+v, %v", snap, err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + r.metrics.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20 s of its context's end")
	}
	shim.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := shim.Read(buf); err == nil && n > 0 {
		t.Errorf("the shim connection got %d bytes after the stop", n)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("the shim connection is still open after Run returned")
	}
	if _, err := watcher.Snapshot(context.Background()); err == nil {
		t.Error("the control session still answers after Run returned")
	}
	for _, path := range []string{r.config.SocketPath(), r.config.ControlPath()} {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is left behind (%v)", path, err)
		}
	}
	client.CloseIdleConnections()
	settledGoroutines(t, before)
}

// TestStagesStopInOrder: a part that fails stops the run; every stage is
// then stopped, in order, each after the one before is done, and the
// failure is what stop reports.
func TestStagesStopInOrder(t *testing.T) {
	var mu sync.Mutex
	var order []string
	waitStop := func(name string) func(context.Context) error {
		return func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // a part that takes a while to stop
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			return nil
		}
	}
	stages := []*stage{
		startStage("serving", waitStop("serving")),
		startStage("exchange", waitStop("exchange"), func(context.Context) error { return errors.New("etcd unreachable") }),
		startStage("sweep", waitStop("sweep")),
	}
	returned := make(chan struct{})
	go func() { defer close(returned); waitForStop(context.Background(), stages) }()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("a failed part did not end the wait")
	}
	var errs []string
	for _, s := range stages {
		if err := s.stop(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if got := strings.Join(order, " "); got != "serving exchange sweep" {
		t.Errorf("stages stopped in the order %q", got)
	}
	if len(errs) != 1 || errs[0] != "exchange: etcd unreachable" {
		t.Errorf("stop errors %q, want the exchange's failure", errs)
	}
}
