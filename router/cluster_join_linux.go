package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/cluster/etcd"
	"github.com/slimnet/slim/router/protocol"
)

// joinTimeout bounds a leave (slim router --leave); joinWait is how
// long a router waits for its join at start before it serves from its
// saved state and joins in the background (etcd unreachable).
const (
	joinTimeout = 30 * time.Second
	joinWait    = 2 * time.Second
)

// The background join: each attempt is bounded by rejoinTimeout, and
// attempts are rejoinMin to rejoinMax apart.
const (
	rejoinTimeout = 10 * time.Second
	rejoinMin     = time.Second
	rejoinMax     = 10 * time.Second
)

// JoinCluster opens the store config.Cluster names and joins it; config's
// host list becomes this host alone. Nothing is done without a cluster
// section (a static cluster).
//
// A store that does not answer within joinWait does not stop the router:
// JoinCluster returns a link that has not joined, with the state the
// router saved last (DIR/cluster.json), and the router joins in the
// background (storeCluster.Run). A store that answers with a refusal (the
// subnet is another host's, another overlay layout, permission denied)
// is an error, as before.
func JoinCluster(config *Config, logger *slog.Logger) (*ClusterLink, error) {
	if config.Cluster == nil {
		return nil, nil
	}
	if err := config.Cluster.Check(len(config.Hosts)); err != nil {
		return nil, err
	}
	plan, err := config.plan(config.SubnetFromStore())
	if err != nil {
		return nil, err
	}
	host := plan.Hosts[config.Self] // no subnet if the store is to pick one
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
		Network:  cluster.Network{Overlay: plan.Config.CIDR, HostBits: plan.Config.HostBits, IPv6: plan.Config.IPv6},
	}
	if self.ID == "" {
		self.ID = host.Underlay.String()
	}
	link := &ClusterLink{
		Store: store, self: self, cachePath: config.ClusterCachePath(), memberPath: config.MemberPath(),
		Member: cluster.Member{ID: self.ID, Underlay: self.Underlay, Subnet: self.Subnet, PeerPort: self.PeerPort},
		routed: map[netip.Prefix]cluster.Claim{}, remote: map[netip.Addr][]protocol.Mapping{}, saveWake: make(chan struct{}, 1),
	}
	if config.SubnetFromStore() {
		// Until the store answers, the subnet it gave at the last run.
		if joined, err := config.WithStoreSubnet(); err == nil {
			link.Member.Subnet = netip.MustParsePrefix(joined.Hosts[0].Subnet)
		}
	}
	link.loadSaved(logger)
	if err := link.joinAtStart(logger); err != nil {
		store.Close()
		return nil, err
	}
	if !link.Member.Subnet.IsValid() {
		store.Close()
		return nil, fmt.Errorf("this host's subnet comes from the cluster store, which does not answer, and no earlier run recorded one in %s: start the router once etcd answers", config.MemberPath())
	}
	config.Hosts = []HostConfig{{Underlay: link.Member.Underlay.String(), Subnet: link.Member.Subnet.String()}}
	config.Self = 0
	return link, nil
}

// loadSaved reads the cluster state the router saved at its last run; the
// overlay is set up with its peers (overlayConfig).
func (link *ClusterLink) loadSaved(logger *slog.Logger) {
	var err error
	if link.cache, err = loadClusterCache(link.cachePath, link.Member); err != nil {
		logger.Warn("ignoring the saved cluster state", "err", err)
	}
	if link.cache != nil {
		for _, c := range link.cache.Claims {
			link.routed[c.Subnet] = c
		}
	}
}

// joinAtStart joins within joinWait; a store that does not answer leaves
// the join to the background (nil), a refusal is an error.
func (link *ClusterLink) joinAtStart(logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), joinWait)
	defer cancel()
	member, err := link.Store.Join(ctx, link.self)
	switch {
	case err == nil:
		return link.setJoined(member)
	case etcd.IsUnreachable(err):
		saved := "none"
		if link.cache != nil {
			saved = fmt.Sprintf("revision %d, %d hosts", link.cache.Revision, len(link.cache.Claims))
		}
		logger.Warn("the cluster store does not answer: serving from the saved cluster state, joining in the background",
			"saved", saved, "err", err)
		return nil
	}
	return err
}

func (link *ClusterLink) setJoined(member cluster.Member) error {
	link.Member = member
	link.joined.Store(true)
	return recordMember(link.memberPath, member)
}

// joinInBackground joins the store, retrying with a backoff, unless the
// link joined at start; false if ctx ended first.
func (r *Router) joinInBackground(ctx context.Context, link *ClusterLink) bool {
	wait := rejoinMin
	for attempt := 1; !link.Joined(); attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, rejoinTimeout)
		member, err := link.Store.Join(attemptCtx, link.self)
		cancel()
		if err == nil {
			if err := link.setJoined(member); err != nil {
				r.log.Error("joined the cluster store", "err", err)
			}
			r.log.Info("joined the cluster store", "attempts", attempt, "subnet", member.Subnet)
			break
		}
		if ctx.Err() != nil {
			return false
		}
		r.log.Warn("joining the cluster store failed; serving from the saved state, retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, rejoinMax)
	}
	return true
}

// Leave gives the host's place in the cluster up (slim router --leave).
func (link *ClusterLink) Leave() error {
	if !link.Joined() {
		return errors.New("leaving the cluster: the cluster store does not answer (see the warning above); nothing was given up")
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	if err := link.Store.Leave(ctx); err != nil {
		return fmt.Errorf("leaving the cluster: %w", err)
	}
	if err := os.Remove(link.memberPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("left the cluster, but its subnet stays recorded: %w", err)
	}
	return nil
}
