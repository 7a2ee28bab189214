package router

import (
	"context"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sync/errgroup"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/protocol"
)

// ClusterLink is a router's membership of a cluster store: the store,
// this host's member record, and what the router made of the store's
// state so far.
type ClusterLink struct {
	Store  cluster.Store
	Member cluster.Member // from the configuration until joined

	self      cluster.Self
	joined    atomic.Bool
	cache     *clusterCache // the saved state, until the store's replaces it
	cachePath string

	memberPath string // MemberFile: the subnet the store gave, for readers of the config

	peers   *overlay.Host                  // programs VXLAN peers; nil if it cannot
	mu      sync.Mutex                     // guards routed (the overlay repair reads it)
	routed  map[netip.Prefix]cluster.Claim // peers programmed
	remote  map[netip.Addr][]protocol.Mapping
	applied *cluster.State
	members storePeers // the peers `slim status` shows

	saveMu   sync.Mutex
	unsaved  *clusterCache // the latest state applied, not yet saved
	saveWake chan struct{}
}

// Joined says whether the link has joined the store (else the router
// serves from its saved state).
func (link *ClusterLink) Joined() bool { return link.joined.Load() }

// peerHost is what programs the VXLAN peers in the router's namespace,
// or nil if the host has no overlay device (then only the directory
// follows the store).
func peerHost(config overlay.Config, member cluster.Member, logger *slog.Logger) *overlay.Host {
	handle, err := netlink.NewHandle()
	if err == nil {
		_, err = handle.LinkByName(overlay.VXLANName)
	}
	if err != nil {
		logger.Warn("no overlay device to program peers on; peers' subnets are not routed by this router", "device", overlay.VXLANName, "err", err)
		return nil
	}
	return overlay.NewPeerHost(handle, config, overlay.HostPlan{Underlay: member.Underlay, Subnet: member.Subnet})
}

// NewOnCluster is New for a router on a cluster store: the overlay it
// sets up at start keeps the peers of its saved state (a restart does
// not take their routes down, even for a moment).
func NewOnCluster(config Config, link *ClusterLink, logger *slog.Logger) (*Router, error) {
	return newWithLink(config, link, logger)
}

// RunWithCluster is Run for a router whose cluster state comes from a
// store: the directory starts complete (the store's first read, or the
// saved state when the store did not answer at start), peers' listeners
// and VXLAN peers follow the store, and this host's listeners are
// published to it. The store is the router's Cluster (storeCluster),
// which Run runs in its exchange stage.
func (r *Router) RunWithCluster(ctx context.Context, link *ClusterLink) error {
	r.clusterLink = link // before Run: the overlay repair keeps the peers it routes
	if link.peers == nil {
		link.peers = peerHost(r.plan.Config, link.Member, r.log)
	}
	if link.Joined() {
		state, _ := link.Store.State()
		r.applyCluster(link, state)
		r.followClusterPolicy(state)
	} else {
		r.applyCache(link)
	}
	r.cluster = &storeCluster{router: r, link: link, exchange: r.cluster}
	return r.Run(ctx)
}

// applyCache puts the saved state's listeners in the directory.
func (r *Router) applyCache(link *ClusterLink) {
	if link.cache == nil {
		return
	}
	for host, mappings := range link.cache.remote() {
		link.remote[host] = mappings
		r.listeners.setRemote(host, mappings)
	}
	link.members.fromCache(link.cache.hosts())
}

// storeCluster is the Cluster of a router on a cluster store: it follows
// the store's state into the directory and the overlay, and publishes
// this host's listeners to it. The static exchange still runs beside it
// (the configuration lists this host alone, so it pushes to no one).
type storeCluster struct {
	router   *Router
	link     *ClusterLink
	exchange Cluster
}

var _ Cluster = (*storeCluster)(nil)

// Peers lists the store's other members (the static exchange beside it
// has none).
func (c *storeCluster) Peers() []control.Peer {
	return c.link.members.view(c.link.Store.Health().Connected)
}

func (c *storeCluster) WaitPublished(version uint64) { c.exchange.WaitPublished(version) }

// Run joins the store if the router started without it, then follows it
// and publishes to it until ctx is done, and returns once its goroutines
// are done.
func (c *storeCluster) Run(ctx context.Context) error {
	group, ctx := errgroup.WithContext(ctx)
	group.Go(func() error { return c.exchange.Run(ctx) })
	group.Go(func() error { c.link.keepSaved(ctx, c.router.log); return nil })
	group.Go(func() error {
		if !c.router.joinInBackground(ctx, c.link) {
			return nil
		}
		follow := make(chan struct{})
		go func() { defer close(follow); c.router.followCluster(ctx, c.link) }()
		c.router.publishToCluster(ctx, c.link)
		<-follow
		return nil
	})
	return group.Wait()
}

// followCluster applies every new state of the store.
func (r *Router) followCluster(ctx context.Context, link *ClusterLink) {
	for {
		state, changed := link.Store.State()
		if r.applyCluster(link, state) {
			r.publish()
		}
		r.followClusterPolicy(state)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// applyCluster makes the peers' listeners those of state and programs
// the overlay towards every held subnet; it says whether the directory
// changed. What it applied is saved (keepSaved).
func (r *Router) applyCluster(link *ClusterLink, state *cluster.State) bool {
	if state == link.applied {
		return false
	}
	link.applied = state
	routesChanged := r.routePeers(link, state)
	changed := false
	seen := map[netip.Addr]bool{}
	heard := map[netip.Addr]bool{}
	for _, m := range state.Members() {
		if m.ID == link.Member.ID {
			continue
		}
		seen[m.Underlay] = true
		mappings := toMappings(state.Listeners(m.ID))
		if !slices.Equal(link.remote[m.Underlay], mappings) {
			link.remote[m.Underlay] = mappings
			r.listeners.setRemote(m.Underlay, mappings)
			changed, heard[m.Underlay] = true, true
		}
	}
	link.members.fromState(state, link.Member.ID, heard, time.Now())
	for underlay := range link.remote {
		if !seen[underlay] {
			delete(link.remote, underlay)
			r.listeners.setRemote(underlay, nil)
			changed = true
		}
	}
	if changed || routesChanged || link.cache != nil {
		link.cache = nil // the store's state replaces the saved one
		link.toSave(newClusterCache(state.Revision(), link.routedClaims(), link.remote))
	}
	return changed
}

// routePeers adds VXLAN peers for subnets newly held and removes those
// of subnets no longer held (a host that left, or whose grace period
// ended); it says whether it changed any.
func (r *Router) routePeers(link *ClusterLink, state *cluster.State) (changed bool) {
	if link.peers == nil {
		return false
	}
	link.mu.Lock()
	defer link.mu.Unlock()
	held := map[netip.Prefix]bool{}
	for _, c := range state.Claims() {
		if c.ID == link.Member.ID || c.Subnet == link.Member.Subnet {
			continue
		}
		held[c.Subnet] = true
		if link.routed[c.Subnet] == c {
			continue
		}
		if old, ok := link.routed[c.Subnet]; ok {
			link.peers.RemovePeer(overlay.HostPlan{Underlay: old.Underlay, Subnet: old.Subnet})
		}
		changed = true
		if err := link.peers.AddPeer(overlay.HostPlan{Underlay: c.Underlay, Subnet: c.Subnet}); err != nil {
			r.log.Warn("cannot route to a peer host", "host", c.ID, "subnet", c.Subnet, "err", err)
			continue
		}
		link.routed[c.Subnet] = c
	}
	for subnet, c := range link.routed {
		if !held[subnet] {
			if err := link.peers.RemovePeer(overlay.HostPlan{Underlay: c.Underlay, Subnet: c.Subnet}); err != nil {
				r.log.Warn("removing a peer host's route", "host", c.ID, "err", err)
			}
			delete(link.routed, subnet)
			changed = true
		}
	}
	return changed
}

// publishToCluster publishes this host's listeners whenever they change.
func (r *Router) publishToCluster(ctx context.Context, link *ClusterLink) {
	var last []protocol.Mapping
	first := true
	for {
		mappings, _, changed := r.listeners.localMappings()
		if first || !slices.Equal(mappings, last) {
			link.Store.PublishListeners(toListeners(mappings))
			last, first = mappings, false
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func toMappings(ls []cluster.Listener) []protocol.Mapping {
	ms := make([]protocol.Mapping, len(ls))
	for i, l := range ls {
		ms[i] = protocol.Mapping{Overlay: l.Overlay, Host: l.Host, Flags: l.Flags}
	}
	return ms
}

func toListeners(ms []protocol.Mapping) []cluster.Listener {
	ls := make([]cluster.Listener, 0, len(ms))
	for _, m := range ms {
		if m.Host.Port() == 0 {
			continue // pending (its app not yet seen accepting): not published
		}
		ls = append(ls, cluster.Listener{Overlay: m.Overlay, Host: m.Host, Flags: m.Flags})
	}
	return ls
}

// routedClaims are the claims of the peer hosts this router routes.
func (link *ClusterLink) routedClaims() []cluster.Claim {
	link.mu.Lock()
	defer link.mu.Unlock()
	claims := slices.Collect(maps.Values(link.routed))
	slices.SortFunc(claims, func(a, b cluster.Claim) int { return a.Subnet.Addr().Compare(b.Subnet.Addr()) })
	return claims
}

// routedHosts are the peer hosts whose subnets this router routes, as
// host configurations: the overlay the repair keeps is the configured
// one plus these.
func (link *ClusterLink) routedHosts() []HostConfig {
	link.mu.Lock()
	defer link.mu.Unlock()
	hosts := make([]HostConfig, 0, len(link.routed))
	for _, c := range link.routed {
		hosts = append(hosts, HostConfig{Underlay: c.Underlay.String(), Subnet: c.Subnet.String()})
	}
	return hosts
}
