package router

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/shimserver/shimtest"
)

// Root-free tests of the shim protocol: the router serves one end of a
// SEQPACKET socketpair in this process, whose own network namespace is
// registered as the container "self". The kernel facts are real: the
// caller's credentials, the pool sockets, the descriptors in flight.

// selfRouter is a router whose one container is this process's network
// namespace, with the given limits.
func selfRouter(t *testing.T, limits Limits) (*Router, *container) {
	t.Helper()
	config := Config{
		Dir: t.TempDir(), Overlay: "198.19.0.0/16", HostBits: 24,
		Hosts:      []HostConfig{{Underlay: "198.18.0.1", Subnet: "198.19.1.0/24"}},
		Containers: []ContainerConfig{{Name: "self", Netns: "/proc/self/ns/net", Addr: "198.19.1.2"}},
		Limits:     limits,
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
	// The test process's own namespace: openContainer would refuse it.
	c := &container{Name: "self", Addr: netip.MustParseAddr("198.19.1.2"), Netns: ino, Source: control.SourceConfig, pool: pool}
	if err := r.containers.add(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.closeContainers)
	return r, c
}

// shimPair connects a shim to r's shim server and returns the shim and a
// channel closed when the router is done with the connection. Datagrams
// in first are sent before the router serves the connection.
func shimPair(t *testing.T, r *Router, first ...[]byte) (*shimtest.Shim, <-chan struct{}) {
	t.Helper()
	return shimtest.Connect(t, r.shims.ServeConn, first...)
}
