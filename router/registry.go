package router

import (
	"net/netip"
	"slices"
	"sync"
	"time"

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
	Added      time.Time      `json:"added"`
}

// registry holds this host's listeners and the mappings peers sent, and
// tells whoever waits on changed() when either changes.
type registry struct {
	mu      sync.Mutex
	local   map[netip.AddrPort]listener
	remote  map[netip.Addr][]protocol.Mapping // by peer underlay address
	changed chan struct{}
}

func newRegistry() *registry {
	return &registry{
		local:   map[netip.AddrPort]listener{},
		remote:  map[netip.Addr][]protocol.Mapping{},
		changed: make(chan struct{}),
	}
}

// notify wakes the waiters; the caller holds mu.
func (g *registry) notify() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// add records a listener, replacing any earlier one for the same overlay
// address (the newest listen wins, as a restarted server expects).
func (g *registry) add(l listener) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.local[l.Overlay] = l
	g.notify()
}

// removeWhere drops the local listeners for which match is true and says
// whether any was dropped.
func (g *registry) removeWhere(match func(listener) bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	removed := false
	for k, l := range g.local {
		if match(l) {
			delete(g.local, k)
			removed = true
		}
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
	ls := make([]listener, 0, len(g.local))
	for _, l := range g.local {
		ls = append(ls, l)
	}
	slices.SortFunc(ls, func(a, b listener) int { return a.Overlay.Compare(b.Overlay) })
	return ls, g.changed
}

// localMappings is what this router tells its peers.
func (g *registry) localMappings() ([]protocol.Mapping, <-chan struct{}) {
	ls, changed := g.snapshot()
	ms := make([]protocol.Mapping, len(ls))
	for i, l := range ls {
		ms[i] = protocol.Mapping{Overlay: l.Overlay, Host: l.Host}
	}
	return ms, changed
}

// entries is the whole directory: local listeners and every peer's.
func (g *registry) entries() []directory.Entry {
	g.mu.Lock()
	defer g.mu.Unlock()
	var es []directory.Entry
	for _, l := range g.local {
		es = append(es, directory.Entry{Overlay: l.Overlay, Host: l.Host})
	}
	for _, ms := range g.remote {
		for _, m := range ms {
			es = append(es, directory.Entry(m))
		}
	}
	return es
}

// lookupCookie finds a local listener by either of its sockets' cookies.
func (g *registry) lookupCookie(cookie uint64) (listener, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.local {
		if l.AppCookie == cookie || l.HostCookie == cookie {
			return l, true
		}
	}
	return listener{}, false
}
