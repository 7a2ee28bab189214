package router

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/slimnet/slim/router/census"
	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/protocol"
)

// listener is an accelerated listener of a container on this host.
type listener struct {
	Container  string         `json:"container"`
	Overlay    netip.AddrPort `json:"overlay"`
	Host       netip.AddrPort `json:"host"`
	AppCookie  uint64         `json:"app_cookie"`  // the app's overlay listening socket
	HostCookie uint64         `json:"host_cookie"` // the host listener handed to it
	ReusePort  bool           `json:"reuse_port"`  // part of an SO_REUSEPORT group
	Added      time.Time      `json:"added"`
}

// registry holds this host's listeners and the mappings peers sent, and
// tells whoever waits on changed() when either changes. An overlay address
// has one listener, or several sharing one host port (SO_REUSEPORT).
type registry struct {
	mu      sync.Mutex
	local   map[netip.AddrPort][]listener
	remote  map[netip.Addr][]protocol.Mapping // by peer underlay address
	changed chan struct{}
	version uint64 // counts changes, so peers can acknowledge one
}

func newRegistry() *registry {
	return &registry{
		local:   map[netip.AddrPort][]listener{},
		remote:  map[netip.Addr][]protocol.Mapping{},
		changed: make(chan struct{}),
	}
}

// notify wakes the waiters; the caller holds mu.
func (g *registry) notify() {
	g.version++
	close(g.changed)
	g.changed = make(chan struct{})
}

// add records a listener. It joins the overlay address's group if both
// use SO_REUSEPORT on the same host port; otherwise it replaces the group
// (the newest listen wins, as a restarted server expects).
func (g *registry) add(l listener) {
	g.mu.Lock()
	defer g.mu.Unlock()
	group := g.local[l.Overlay]
	if len(group) > 0 && l.ReusePort && group[0].ReusePort && group[0].Host == l.Host {
		g.local[l.Overlay] = append(group, l)
	} else {
		g.local[l.Overlay] = []listener{l}
	}
	g.notify()
}

// reuseGroup returns the host address of an overlay address's SO_REUSEPORT
// group, if it has one.
func (g *registry) reuseGroup(overlay netip.AddrPort) (netip.AddrPort, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	group := g.local[overlay]
	if len(group) == 0 || !group[0].ReusePort {
		return netip.AddrPort{}, false
	}
	return group[0].Host, true
}

// removeWhere drops the local listeners for which match is true and says
// whether any was dropped.
func (g *registry) removeWhere(match func(listener) bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	removed := false
	for k, group := range g.local {
		kept := slices.DeleteFunc(slices.Clone(group), match)
		switch {
		case len(kept) == len(group):
			continue
		case len(kept) == 0:
			delete(g.local, k)
		default:
			g.local[k] = kept
		}
		removed = true
	}
	if removed {
		g.notify()
	}
	return removed
}

// setRemote replaces a peer's mappings.
func (g *registry) setRemote(peer netip.Addr, mappings []protocol.Mapping) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if slices.Equal(g.remote[peer], mappings) {
		return
	}
	g.remote[peer] = mappings
	g.notify()
}

// snapshot returns the local listeners and a channel closed at the next
// change.
func (g *registry) snapshot() ([]listener, <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ls []listener
	for _, group := range g.local {
		ls = append(ls, group...)
	}
	slices.SortFunc(ls, func(a, b listener) int { return a.Overlay.Compare(b.Overlay) })
	return ls, g.changed
}

// localMappings is what this router tells its peers: one mapping per
// overlay address, with the version they belong to.
func (g *registry) localMappings() ([]protocol.Mapping, uint64, <-chan struct{}) {
	g.mu.Lock()
	version := g.version
	g.mu.Unlock()
	ls, changed := g.snapshot()
	ms := make([]protocol.Mapping, 0, len(ls))
	for _, l := range ls {
		m := protocol.Mapping{Overlay: l.Overlay, Host: l.Host}
		if len(ms) == 0 || ms[len(ms)-1] != m {
			ms = append(ms, m)
		}
	}
	return ms, version, changed
}

// currentVersion is the version of the latest change.
func (g *registry) currentVersion() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.version
}

// entries is the whole directory: local listeners and every peer's.
func (g *registry) entries() []directory.Entry {
	g.mu.Lock()
	defer g.mu.Unlock()
	var es []directory.Entry
	for overlay, group := range g.local {
		es = append(es, directory.Entry{Overlay: overlay, Host: group[0].Host})
	}
	for _, ms := range g.remote {
		for _, m := range ms {
			es = append(es, directory.Entry(m))
		}
	}
	return es
}

// directoryView returns what the census needs: local listeners by host
// address and the overlay address of every host address in the directory.
func (g *registry) directoryView() census.DirectoryView {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := census.DirectoryView{LocalByHost: map[netip.AddrPort]census.Listener{}, OverlayOf: map[netip.AddrPort]netip.AddrPort{}}
	for overlay, group := range g.local {
		for _, l := range group {
			if _, ok := v.LocalByHost[l.Host]; !ok {
				v.LocalByHost[l.Host] = census.Listener{Container: l.Container, Overlay: l.Overlay}
			}
		}
		v.OverlayOf[group[0].Host] = overlay
	}
	for _, ms := range g.remote {
		for _, m := range ms {
			v.OverlayOf[m.Host] = m.Overlay
		}
	}
	return v
}

// remoteCount is the number of mappings a peer sent last.
func (g *registry) remoteCount(peer netip.Addr) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.remote[peer])
}
