package router

import (
	"net/netip"
	"testing"
	"time"

	"github.com/slimnet/slim/router/protocol"
)

func TestRegistryNewestListenWins(t *testing.T) {
	g := newRegistry()
	_, changed := g.snapshot()
	overlayAddr := netip.MustParseAddrPort("198.19.1.2:80")
	g.add(listener{Overlay: overlayAddr, Host: netip.MustParseAddrPort("198.18.0.1:40000"), HostCookie: 1})
	select {
	case <-changed:
	default:
		t.Error("add did not signal a change")
	}
	g.add(listener{Overlay: overlayAddr, Host: netip.MustParseAddrPort("198.18.0.1:40001"), HostCookie: 2})
	es := g.entries()
	if len(es) != 1 || es[0].Host.Port() != 40001 {
		t.Errorf("entries = %v, want only the newest listener", es)
	}
	if _, ok := g.lookupCookie(2); !ok {
		t.Error("lookupCookie(2) failed")
	}
	if !g.removeWhere(func(l listener) bool { return l.HostCookie == 2 }) || len(g.entries()) != 0 {
		t.Error("removeWhere left the listener")
	}
}

// TestRegistryReserveDisplacesNothing: a reservation takes an overlay
// address that has no entry, never one that has (a listener, armed or
// pending, or another reservation), and a LISTEN replaces it.
func TestRegistryReserveDisplacesNothing(t *testing.T) {
	g := newRegistry()
	overlayAddr := netip.MustParseAddrPort("198.19.1.2:80")
	pending := netip.MustParseAddrPort("198.18.0.1:0")
	if !g.reserve(listener{Overlay: overlayAddr, Host: pending, AppCookie: 7, Pending: true}) {
		t.Fatal("a reservation of a free address was not added")
	}
	if g.reserve(listener{Overlay: overlayAddr, Host: pending, AppCookie: 8, Pending: true}) {
		t.Error("a reservation displaced another")
	}
	g.add(listener{Overlay: overlayAddr, Host: netip.MustParseAddrPort("198.18.0.1:40000"), HostCookie: 1})
	if g.reserve(listener{Overlay: overlayAddr, Host: pending, AppCookie: 9, Pending: true}) {
		t.Error("a reservation displaced a listener")
	}
	if es := g.entries(); len(es) != 1 || es[0].Host.Port() != 40000 {
		t.Errorf("entries = %v, want the listener alone", es)
	}
}

func TestRegistryMergesPeers(t *testing.T) {
	g := newRegistry()
	g.add(listener{Overlay: netip.MustParseAddrPort("198.19.1.2:80"), Host: netip.MustParseAddrPort("198.18.0.1:40000"), Added: time.Now()})
	peer := netip.MustParseAddr("198.18.0.2")
	m := protocol.Mapping{Overlay: netip.MustParseAddrPort("198.19.2.2:80"), Host: netip.MustParseAddrPort("198.18.0.2:40000")}
	g.setRemote(peer, []protocol.Mapping{m})
	if len(g.entries()) != 2 {
		t.Errorf("entries = %v, want local and peer listener", g.entries())
	}
	if ms, _, _ := g.localMappings(); len(ms) != 1 || ms[0].Overlay.Port() != 80 || ms[0].Host.Addr() != netip.MustParseAddr("198.18.0.1") {
		t.Errorf("localMappings = %v; a router must announce only its own listeners", ms)
	}
	g.setRemote(peer, nil)
	if len(g.entries()) != 1 {
		t.Errorf("peer's withdrawal not applied: %v", g.entries())
	}
}

func TestConfigPlanErrors(t *testing.T) {
	base := Config{
		Dir: "/run/slim", Overlay: "198.19.0.0/16", HostBits: 24,
		Hosts:      []HostConfig{{Underlay: "198.18.0.1", Subnet: "198.19.1.0/24"}, {Underlay: "198.18.0.2", Subnet: "198.19.2.0/24"}},
		Containers: []ContainerConfig{{Name: "c", Netns: "/run/netns/c", Addr: "198.19.1.2"}},
	}
	if _, err := base.Plan(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Config){
		"relative dir":       func(c *Config) { c.Dir = "run" },
		"bad overlay":        func(c *Config) { c.Overlay = "198.19.0.0" },
		"self out of range":  func(c *Config) { c.Self = 2 },
		"bad underlay":       func(c *Config) { c.Hosts = []HostConfig{{Underlay: "x", Subnet: "198.19.1.0/24"}} },
		"overlapping hosts":  func(c *Config) { c.Hosts = []HostConfig{c.Hosts[0], {Underlay: "198.18.0.2", Subnet: "198.19.1.0/24"}} },
		"foreign container":  func(c *Config) { c.Containers = []ContainerConfig{{Name: "c", Netns: "/x", Addr: "198.19.2.2"}} },
		"container no netns": func(c *Config) { c.Containers = []ContainerConfig{{Name: "c", Addr: "198.19.1.2"}} },
	}
	for name, mutate := range cases {
		c := base
		c.Hosts = append([]HostConfig(nil), base.Hosts...)
		mutate(&c)
		if _, err := c.Plan(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRegistryReusePortGroup(t *testing.T) {
	g := newRegistry()
	overlayAddr := netip.MustParseAddrPort("198.19.1.2:80")
	host := netip.MustParseAddrPort("198.18.0.1:40000")
	if _, ok := g.reuseGroup(overlayAddr, afInet, 0); ok {
		t.Fatal("empty registry has a group")
	}
	g.add(listener{Overlay: overlayAddr, Host: host, HostCookie: 1, ReusePort: true})
	if got, ok := g.reuseGroup(overlayAddr, afInet, 0); !ok || got != host {
		t.Fatalf("reuseGroup = %v, %v", got, ok)
	}
	if _, ok := g.reuseGroup(overlayAddr, afInet6, 0); ok {
		t.Fatal("an AF_INET6 listener joins an AF_INET SO_REUSEPORT group (the kernel refuses)")
	}
	g.add(listener{Overlay: overlayAddr, Host: host, HostCookie: 2, ReusePort: true})
	if ls, _ := g.snapshot(); len(ls) != 2 {
		t.Fatalf("group has %d listeners, want 2", len(ls))
	}
	if es := g.entries(); len(es) != 1 || es[0].Host != host {
		t.Errorf("entries = %v, want one mapping for the group", es)
	}
	if ms, _, _ := g.localMappings(); len(ms) != 1 {
		t.Errorf("localMappings = %v, want one mapping for the group", ms)
	}
	g.removeWhere(func(l listener) bool { return l.HostCookie == 1 })
	if _, ok := g.lookupCookie(2); !ok || len(g.entries()) != 1 {
		t.Error("removing one member dropped the group")
	}
	// A listener without SO_REUSEPORT replaces the group.
	g.add(listener{Overlay: overlayAddr, Host: netip.MustParseAddrPort("198.18.0.1:40001"), HostCookie: 3})
	if _, ok := g.lookupCookie(2); ok {
		t.Error("plain listener did not replace the group")
	}
}

// lookupCookie finds a local listener by either of its sockets' cookies.
func (g *registry) lookupCookie(cookie uint64) (listener, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, group := range g.local {
		for _, l := range group {
			if l.AppCookie == cookie || l.HostCookie == cookie {
				return l, true
			}
		}
	}
	return listener{}, false
}
