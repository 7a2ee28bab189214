package router

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sync/errgroup"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/cluster/etcd"
	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/protocol"
)

// joinTimeout bounds a router's join at start: it needs its subnet
// before it serves.
const joinTimeout = 30 * time.Second

// ClusterLink is a router's membership of a cluster store: the store,
// this host's member record, and what the router made of the store's
// state so far.
type ClusterLink struct {
	Store  cluster.Store
	Member cluster.Member

	peers   *overlay.Host                  // programs VXLAN peers; nil if it cannot
	mu      sync.Mutex                     // guards routed (the overlay repair reads it)
	routed  map[netip.Prefix]cluster.Claim // peers programmed
	remote  map[netip.Addr][]protocol.Mapping
	applied *cluster.State
}

// JoinCluster opens the store config.Cluster names and joins it; config's
// host list becomes this host alone, with the subnet the store gave it.
// Nothing is done without a cluster section (a static cluster).
func JoinCluster(config *Config, logger *slog.Logger) (*ClusterLink, error) {
	if config.Cluster == nil {
		return nil, nil
	}
	if err := config.Cluster.Check(len(config.Hosts)); err != nil {
		return nil, err
	}
	plan, err := config.Plan()
	if err != nil {
		return nil, err
	}
	host := plan.Hosts[config.Self]
	settings := config.Cluster.Etcd
	settings.Logger = logger.With("store", "etcd")
	store, err := etcd.New(settings)
	if err != nil {
		return nil, err
	}
	self := cluster.Self{
		ID:       config.Cluster.HostID,
		Underlay: host.Underlay,
		Subnet:   host.Subnet,
		PeerPort: config.PeerPort,
		Network:  cluster.Network{Overlay: plan.Config.CIDR, HostBits: plan.Config.HostBits},
	}
	if self.ID == "" {
		self.ID = host.Underlay.String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	member, err := store.Join(ctx, self)
	if err != nil {
		store.Close()
		return nil, err
	}
	config.Hosts = []HostConfig{{Underlay: member.Underlay.String(), Subnet: member.Subnet.String()}}
	config.Self = 0
	link := &ClusterLink{Store: store, Member: member, routed: map[netip.Prefix]cluster.Claim{}, remote: map[netip.Addr][]protocol.Mapping{}}
	link.peers = peerHost(plan.Config, member, logger)
	return link, nil
}

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

// RunWithCluster is Run for a router whose cluster state comes from a
// store: the directory starts complete (the store's first read), peers'
// listeners and VXLAN peers follow the store, and this host's listeners
// are published to it. The store is the router's Cluster (storeCluster),
// which Run runs in its exchange stage.
func (r *Router) RunWithCluster(ctx context.Context, link *ClusterLink) error {
	r.clusterLink = link // before Run: the overlay repair keeps the peers it routes
	state, _ := link.Store.State()
	r.applyCluster(link, state)
	r.followClusterPolicy(state)
	r.cluster = &storeCluster{router: r, link: link, exchange: r.cluster}
	return r.Run(ctx)
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

func (c *storeCluster) Peers() []control.Peer { return c.exchange.Peers() }

func (c *storeCluster) WaitPublished(version uint64) { c.exchange.WaitPublished(version) }

// Run follows the store and publishes to it until ctx is done, and
// returns once its goroutines are done.
func (c *storeCluster) Run(ctx context.Context) error {
	group, ctx := errgroup.WithContext(ctx)
	group.Go(func() error { return c.exchange.Run(ctx) })
	group.Go(func() error { c.router.followCluster(ctx, c.link); return nil })
	group.Go(func() error { c.router.publishToCluster(ctx, c.link); return nil })
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
// changed.
func (r *Router) applyCluster(link *ClusterLink, state *cluster.State) bool {
	if state == link.applied {
		return false
	}
	link.applied = state
	r.routePeers(link, state)
	changed := false
	seen := map[netip.Addr]bool{}
	for _, m := range state.Members() {
		if m.ID == link.Member.ID {
			continue
		}
		seen[m.Underlay] = true
		mappings := toMappings(state.Listeners(m.ID))
		if !slices.Equal(link.remote[m.Underlay], mappings) {
			link.remote[m.Underlay] = mappings
			r.listeners.setRemote(m.Underlay, mappings)
			changed = true
		}
	}
	for underlay := range link.remote {
		if !seen[underlay] {
			delete(link.remote, underlay)
			r.listeners.setRemote(underlay, nil)
			changed = true
		}
	}
	return changed
}

// routePeers adds VXLAN peers for subnets newly held and removes those
// of subnets no longer held (a host that left, or whose grace period
// ended).
func (r *Router) routePeers(link *ClusterLink, state *cluster.State) {
	if link.peers == nil {
		return
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
		}
	}
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
		ms[i] = protocol.Mapping{Overlay: l.Overlay, Host: l.Host}
	}
	return ms
}

func toListeners(ms []protocol.Mapping) []cluster.Listener {
	ls := make([]cluster.Listener, 0, len(ms))
	for _, m := range ms {
		if m.Host.Port() == 0 {
			continue // pending (its app not yet seen accepting): not published
		}
		ls = append(ls, cluster.Listener{Overlay: m.Overlay, Host: m.Host})
	}
	return ls
}

// Leave gives the host's place in the cluster up (slim router --leave).
func (link *ClusterLink) Leave() error {
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	if err := link.Store.Leave(ctx); err != nil {
		return fmt.Errorf("leaving the cluster: %w", err)
	}
	return nil
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
