package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/router/protocol"
)

// clusterCache is what a router on a cluster store keeps of the store's
// state in DIR/cluster.json: the subnets it routes the overlay to and the
// other hosts' listeners. A router that starts while the store is
// unreachable serves from it (docs/cluster.md, "When etcd is
// unavailable") until it has joined and read the store again.
type clusterCache struct {
	Version  int             `json:"version"`
	Revision int64           `json:"revision"` // the store's, of the state saved
	Claims   []cluster.Claim `json:"claims"`   // the peer hosts routed
	// Listeners are the other hosts' listeners by underlay address, as
	// overlay and host address pairs.
	Listeners map[netip.Addr][][2]netip.AddrPort `json:"listeners"`
	// Flags are the listeners' directory flags, in the same order, for
	// the hosts that have any (IPv6 overlay addresses).
	Flags map[netip.Addr][]uint16 `json:"flags,omitempty"`
}

const clusterCacheVersion = 1

// ClusterCachePath is where a router on a cluster store keeps the last
// state it applied.
func (c Config) ClusterCachePath() string { return filepath.Join(c.Dir, "cluster.json") }

// newClusterCache is the cache of what a router applied: the claims it
// routes and the peers' listeners (the map is copied; its lists are
// never changed in place, so they are shared).
func newClusterCache(revision int64, claims []cluster.Claim, remote map[netip.Addr][]protocol.Mapping) *clusterCache {
	c := &clusterCache{Version: clusterCacheVersion, Revision: revision, Claims: claims, Listeners: map[netip.Addr][][2]netip.AddrPort{}}
	for host, ms := range remote {
		pairs := make([][2]netip.AddrPort, len(ms))
		flags := make([]uint16, len(ms))
		flagged := false
		for i, m := range ms {
			pairs[i] = [2]netip.AddrPort{m.Overlay, m.Host}
			flags[i], flagged = m.Flags, flagged || m.Flags != 0
		}
		c.Listeners[host] = pairs
		if flagged {
			if c.Flags == nil {
				c.Flags = map[netip.Addr][]uint16{}
			}
			c.Flags[host] = flags
		}
	}
	return c
}

// save writes the cache atomically (mode 0600: it lists every host).
func (c *clusterCache) save(path string) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("saving the cluster state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("saving the cluster state: %w", err)
	}
	return nil
}

// loadClusterCache reads the cache of a router of host self; nil if
// there is none. Claims and listeners are checked as the store checks
// records (docs/cluster.md): a claim of this host's subnet or address is
// dropped, and so is a listener outside its host's subnet or at another
// address than its host's.
func loadClusterCache(path string, self cluster.Member) (*clusterCache, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c clusterCache
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.Version != clusterCacheVersion {
		return nil, fmt.Errorf("%s has version %d, this router reads %d", path, c.Version, clusterCacheVersion)
	}
	subnets := map[netip.Addr]netip.Prefix{}
	claims := c.Claims[:0]
	for _, cl := range c.Claims {
		if !cl.Subnet.IsValid() || !cl.Underlay.IsValid() || cl.Subnet.Overlaps(self.Subnet) || cl.Underlay == self.Underlay {
			continue
		}
		subnets[cl.Underlay] = cl.Subnet
		claims = append(claims, cl)
	}
	c.Claims = claims
	for host, pairs := range c.Listeners {
		subnet, ok := subnets[host]
		if !ok || slices.ContainsFunc(pairs, func(p [2]netip.AddrPort) bool {
			return !subnet.Contains(p[0].Addr()) || p[1].Addr() != host || p[1].Port() == 0
		}) {
			delete(c.Listeners, host)
		}
	}
	return &c, nil
}

// remote is the cache's listeners as the registry takes them.
// hosts are the saved peer hosts' subnets by underlay address.
func (c *clusterCache) hosts() map[netip.Addr]netip.Prefix {
	out := make(map[netip.Addr]netip.Prefix, len(c.Claims))
	for _, claim := range c.Claims {
		out[claim.Underlay] = claim.Subnet
	}
	return out
}

func (c *clusterCache) remote() map[netip.Addr][]protocol.Mapping {
	out := make(map[netip.Addr][]protocol.Mapping, len(c.Listeners))
	for host, pairs := range c.Listeners {
		ms := make([]protocol.Mapping, len(pairs))
		flags := c.Flags[host]
		for i, p := range pairs {
			ms[i] = protocol.Mapping{Overlay: p[0], Host: p[1]}
			if len(flags) == len(pairs) {
				ms[i].Flags = flags[i]
			}
		}
		out[host] = ms
	}
	return out
}
