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

// Address families, in Linux's numbering (this file is portable).
const (
	afInet  = 2
	afInet6 = 10
)

// listener is an accelerated listener of a container on this host.
type listener struct {
	Container  string         `json:"container"`
	Overlay    netip.AddrPort `json:"overlay"`
	Host       netip.AddrPort `json:"host"`
	AppCookie  uint64         `json:"app_cookie"`       // the app's overlay listening socket
	HostCookie uint64         `json:"host_cookie"`      // the host listener handed to it
	ReusePort  bool           `json:"reuse_port"`       // part of an SO_REUSEPORT group
	Family     int            `json:"family,omitempty"` // of the host listener: AF_INET6 for an app's AF_INET6 listener (v4-mapped); 0: AF_INET
	// Flags: the clients it takes (directory.FlagIPv6, FlagNoIPv4); 0: IPv4 ones.
	Flags uint16    `json:"flags,omitempty"`
	Added time.Time `json:"added"`
	// Pending: no shim has said yet that the app accepts from it
	// (PUBLISH). The directory lists it without a host port: clients wait
	// a little for it, then use the overlay.
	Pending bool `json:"pending,omitempty"`
	// Seen is when a shim last said the app accepts from it.
	Seen time.Time `json:"seen,omitzero"`
}

// published is the host address the directory gives for the listener:
// without a port while it is pending (docs/protocol.md §2).
func (l listener) published() netip.AddrPort {
	if l.Pending {
		return netip.AddrPortFrom(l.Host.Addr(), 0)
	}
	return l.Host
}

// key is the listener's place in the registry: its overlay address, but
// an IPv6-only listener's v4-mapped, so that it and an IPv4 listener on
// the same port (nginx's "listen 80; listen [::]:80") both have one.
func (l listener) key() netip.AddrPort {
	if l.Flags&directory.FlagNoIPv4 != 0 {
		return netip.AddrPortFrom(netip.AddrFrom16(l.Overlay.Addr().As16()), l.Overlay.Port())
	}
	return l.Overlay
}

// since is when the listener was last known to be wanted: added or seen.
func (l listener) since() time.Time {
	if l.Seen.After(l.Added) {
		return l.Seen
	}
	return l.Added
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
	group := g.local[l.key()]
	if len(group) > 0 && l.ReusePort && group[0].ReusePort && group[0].Host == l.Host {
		g.local[l.key()] = append(group, l)
	} else {
		g.local[l.key()] = []listener{l}
	}
	g.notify()
}

// reserve records a listener about to listen (RESERVE: pending, no host
// listener yet) if its overlay address has none: it never displaces a
// listener, which only a LISTEN replaces. It says whether it was added.
func (g *registry) reserve(l listener) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.local[l.key()]) > 0 {
		return false
	}
	g.local[l.key()] = []listener{l}
	g.notify()
	return true
}

// seen marks the listener whose host listener has the given cookie as
// accepted from now, no longer pending. found: there is one; published:
// it was pending (the directory changed).
func (g *registry) seen(hostCookie uint64, now time.Time) (found, published bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, group := range g.local {
		for i := range group {
			if group[i].HostCookie != hostCookie {
				continue
			}
			group[i].Seen = now
			if group[i].Pending {
				group[i].Pending = false
				g.notify()
				return true, true
			}
			return true, false
		}
	}
	return false, false
}

// reuseGroup returns the host address of an overlay address's SO_REUSEPORT
// group of host listeners of family, if it has one (the kernel groups
// sockets of one family only).
func (g *registry) reuseGroup(overlay netip.AddrPort, family int, flags uint16) (netip.AddrPort, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, l := range g.local[listener{Overlay: overlay, Flags: flags}.key()] {
		if l.ReusePort && l.family() == hostFamily(family) {
			return l.Host, true
		}
	}
	return netip.AddrPort{}, false
}

// family is the host listener's address family (AF_INET when unset).
func (l listener) family() int { return hostFamily(l.Family) }

// hostFamily is family, AF_INET when unset.
func hostFamily(family int) int {
	if family == 0 {
		return afInet
	}
	return family
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

// groupHost is what the directory gives for an overlay address's group:
// its host address once any member is accepted from.
func groupHost(group []listener) netip.AddrPort {
	for _, l := range group {
		if !l.Pending {
			return l.Host
		}
	}
	return group[0].published()
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
	defer g.mu.Unlock()
	ms := make([]protocol.Mapping, 0, len(g.local))
	for _, group := range g.local {
		ms = append(ms, protocol.Mapping{Overlay: group[0].Overlay, Host: groupHost(group), Flags: group[0].Flags})
	}
	slices.SortFunc(ms, func(a, b protocol.Mapping) int { return a.Overlay.Compare(b.Overlay) })
	return ms, g.version, g.changed
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
	for _, group := range g.local {
		es = append(es, directory.Entry{Overlay: group[0].Overlay, Host: groupHost(group), Flags: group[0].Flags})
	}
	for _, ms := range g.remote {
		for _, m := range ms {
			es = append(es, directory.Entry{Overlay: m.Overlay, Host: m.Host, Flags: m.Flags})
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
	for _, group := range g.local {
		for _, l := range group {
			if _, ok := v.LocalByHost[l.Host]; !ok {
				v.LocalByHost[l.Host] = census.Listener{Container: l.Container, Overlay: l.Overlay}
			}
		}
		v.OverlayOf[group[0].Host] = group[0].Overlay
	}
	for _, ms := range g.remote {
		for _, m := range ms {
			if m.Host.Port() != 0 { // a pending listener has no connections
				v.OverlayOf[m.Host] = m.Overlay
			}
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
