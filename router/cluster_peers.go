package router

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/control"
)

// storePeers is what a router on a cluster store shows as its peers
// (`slim status`, `slim top`): the other members of the store's last
// state, each up while the store lists it (its lease is kept) and this
// router is connected to the store. A router serving from its saved
// state lists the saved hosts, none of them up.
type storePeers struct {
	mu    sync.Mutex
	hosts map[netip.Addr]*storePeer
	up    bool // the peers came from the store, not from the saved state
}

type storePeer struct {
	subnet netip.Prefix
	// heard is when the store last gave this host's listeners as changed
	// (or first listed the host).
	heard time.Time
	live  bool
}

// fromState records the members of state other than self; changed lists
// the hosts whose listeners changed in it.
func (p *storePeers) fromState(state *cluster.State, self string, changed map[netip.Addr]bool, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = true
	seen := map[netip.Addr]bool{}
	for _, m := range state.Members() {
		if m.ID == self {
			continue
		}
		seen[m.Underlay] = true
		p.record(m.Underlay, m.Subnet, changed[m.Underlay], now)
	}
	for host, peer := range p.hosts {
		if !seen[host] {
			delete(p.hosts, host)
		} else {
			peer.live = true
		}
	}
}

// fromCache records the hosts of the saved state, none of them live.
func (p *storePeers) fromCache(hosts map[netip.Addr]netip.Prefix) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for host, subnet := range hosts {
		p.record(host, subnet, false, time.Time{})
	}
}

func (p *storePeers) record(host netip.Addr, subnet netip.Prefix, changed bool, now time.Time) {
	if p.hosts == nil {
		p.hosts = map[netip.Addr]*storePeer{}
	}
	peer := p.hosts[host]
	if peer == nil {
		peer = &storePeer{heard: now}
		p.hosts[host] = peer
	}
	peer.subnet = subnet
	if changed || peer.heard.IsZero() {
		peer.heard = now
	}
}

// view lists the peers for the control API, in address order; connected
// says whether the router is connected to the store now.
func (p *storePeers) view(connected bool) []control.Peer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]control.Peer, 0, len(p.hosts))
	for host, peer := range p.hosts {
		out = append(out, control.Peer{
			Host: host, Subnet: peer.subnet, LastDirectory: peer.heard,
			Connected: connected && p.up && peer.live,
		})
	}
	slices.SortFunc(out, func(a, b control.Peer) int { return a.Host.Compare(b.Host) })
	return out
}
