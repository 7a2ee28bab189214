package router

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/secure"
)

// TestNewRefusesBadStarts: New refuses, before it opens anything, a
// configuration that does not plan, a router with peers and no key, and
// a key file it cannot read.
func TestNewRefusesBadStarts(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := Config{
		Dir: t.TempDir(), Overlay: "198.19.0.0/16", HostBits: 24,
		Hosts: []HostConfig{{Underlay: "127.0.0.1", Subnet: "198.19.1.0/24"}, {Underlay: "127.0.0.2", Subnet: "198.19.2.0/24"}},
	}
	for _, tt := range []struct {
		name   string
		change func(*Config)
		says   string
	}{
		{"no dir", func(c *Config) { c.Dir = "" }, "must be an absolute path"},
		{"peers without a key", func(c *Config) {}, "no cluster key"},
		{"a missing key file", func(c *Config) { c.KeyFile = filepath.Join(c.Dir, "none") }, "none"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.change(&c)
			if r, err := New(c, log); err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("New: %v, %v; want an error saying %q", r, err, tt.says)
			}
			if _, err := os.Stat(c.SocketPath()); err == nil {
				t.Error("a refused start left its socket")
			}
		})
	}
}

// TestListenShims: the shim socket is open to every local user (the
// containers' programs run as any user); a stale one left by a router
// that died is replaced; one a router serves is left to it.
func TestListenShims(t *testing.T) {
	path := filepath.Join(t.TempDir(), "router.sock")
	stale, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	l, err := listenShims(path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer l.Close()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o666 {
		t.Errorf("shim socket mode %v (%v), want 0666", st.Mode().Perm(), err)
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
	if _, err := listenShims(path); err == nil || !strings.Contains(err.Error(), "another router is serving") {
		t.Errorf("on a served socket: %v", err)
	}
}

// TestSecureModeReadyNamesWhatIsMissing: a kernel without a feature
// secure mode needs is named, with what secure mode uses it for.
func TestSecureModeReadyNamesWhatIsMissing(t *testing.T) {
	var fs secure.Features
	for _, f := range []*secure.Feature{&fs.CgroupSockAddr, &fs.CgroupSockopt, &fs.SockOps, &fs.CgroupSKB, &fs.SkMsg, &fs.Cgroup2, &fs.BPFFS} {
		f.Name, f.Use, f.Required, f.Present = "feature", "work", true, true
	}
	if err := secureModeReady(fs); err != nil {
		t.Fatalf("every feature present: %v", err)
	}
	fs.SockOps = secure.Feature{Name: "sockops BPF programs", Use: "sign SYNs", Required: true}
	if err := secureModeReady(fs); err == nil || !strings.Contains(err.Error(), "sockops BPF programs") || !strings.Contains(err.Error(), "sign SYNs") {
		t.Errorf("sockops missing: %v", err)
	}
}

// TestClientBindPortsLeaveOutTheRoutersOwn: the ports a pool socket may
// be bound to in secure mode leave out the peer and metrics ports.
func TestClientBindPortsLeaveOutTheRoutersOwn(t *testing.T) {
	r := loopbackRouter(t)
	r.config.PeerPort = 40000
	r.config.MetricsAddr = "127.0.0.1:40001"
	ports, err := r.clientBindPorts()
	if err != nil {
		t.Fatal(err)
	}
	for _, own := range []uint16{40000, 40001} {
		if ports.lo <= own && own <= ports.hi {
			t.Errorf("pool sockets may be bound to %d-%d, which holds the router's port %d", ports.lo, ports.hi, own)
		}
	}
}

// TestRegisterContainersRefusals: a container whose namespace is the
// router's own (the host's) stops the start, naming it; one whose
// namespace is gone (it exited while the router was down) is not served,
// and the router starts.
func TestRegisterContainersRefusals(t *testing.T) {
	for _, tt := range []struct {
		netns, says string
	}{
		{"/proc/self/ns/net", "container c: netns /proc/self/ns/net is the router's own"},
		{filepath.Join(t.TempDir(), "gone"), ""},
	} {
		config := Config{Dir: t.TempDir(), Containers: []ContainerConfig{{Name: "c", Netns: tt.netns, Addr: "198.19.1.2"}}}
		r := newRouter(config, overlayPlan(t), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		err := r.registerContainers()
		if tt.says == "" && err != nil || tt.says != "" && (err == nil || !strings.Contains(err.Error(), tt.says)) {
			t.Errorf("netns %s: %v, want %q", tt.netns, err, tt.says)
		}
		if r.containers.len() != 0 {
			t.Errorf("netns %s: %d containers registered", tt.netns, r.containers.len())
		}
	}
}

// TestCleanupWithNothingLeft: --cleanup of a router that left nothing of
// secure mode says so; of a router that runs, refuses.
func TestCleanupWithNothingLeft(t *testing.T) {
	r := loopbackRouter(t)
	config := r.config
	config.Dir = t.TempDir()
	if report, err := Cleanup(config); err != nil || report.Found {
		t.Errorf("Cleanup of nothing: %+v, %v", report, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); r.shims.Serve(ctx, r.socket) }()
	defer func() { cancel(); <-served }()
	if _, err := Cleanup(r.config); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("Cleanup while a router serves: %v", err)
	}
}

func overlayPlan(t *testing.T) overlay.Plan {
	t.Helper()
	c := Config{Dir: "/run/slim", Overlay: "198.19.0.0/16", HostBits: 24, Hosts: []HostConfig{{Underlay: "127.0.0.1", Subnet: "198.19.1.0/24"}}}
	plan, err := c.Plan()
	if err != nil {
		t.Fatal(err)
	}
	return plan
}
