package etcd

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/cluster"
)

// maxCandidates is how many free subnets one round of a join tries
// before reading the claims again.
const maxCandidates = 8

// Join claims a subnet and publishes this host's member record (see
// cluster.Store).
func (s *Store) Join(ctx context.Context, self cluster.Self) (cluster.Member, error) {
	if err := self.Check(); err != nil {
		return cluster.Member{}, err
	}
	s.mu.Lock()
	closed, joined := s.closed, s.joined
	s.mu.Unlock()
	switch {
	case closed:
		return cluster.Member{}, cluster.ErrClosed
	case joined:
		return cluster.Member{}, errors.New("this store has joined already")
	}
	member, rev, err := s.join(ctx, self)
	if err != nil {
		s.health.failed(err)
		return cluster.Member{}, fmt.Errorf("joining the cluster on etcd %v: %w", s.config.Endpoints, err)
	}
	if !s.config.PublishOnly {
		s.goLoop(func() { s.follow(rev) })
	}
	s.goLoop(s.keepAlive)
	s.goLoop(s.publisher)
	return member, nil
}

func (s *Store) join(ctx context.Context, self cluster.Self) (cluster.Member, int64, error) {
	if err := s.ensureNetwork(ctx, self.Network); err != nil {
		return cluster.Member{}, 0, err
	}
	rev, err := s.relist(ctx)
	if err != nil {
		return cluster.Member{}, 0, err
	}
	live, err := s.grant(ctx, s.config.ttl())
	if err != nil {
		return cluster.Member{}, 0, err
	}
	claim, err := s.grant(ctx, s.config.grace())
	if err != nil {
		s.revoke(live)
		return cluster.Member{}, 0, err
	}
	member, err := s.claimSubnet(ctx, self, live, claim)
	if err != nil {
		s.revoke(live)
		s.revoke(claim)
		return cluster.Member{}, 0, err
	}
	s.health.wrote()
	return member, rev, nil
}

// ensureNetwork records the overlay layout if the cluster has none yet,
// and refuses a router whose layout is not the cluster's.
func (s *Store) ensureNetwork(ctx context.Context, n cluster.Network) error {
	key := s.keys.network()
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return err
	}
	if len(resp.Kvs) == 0 {
		txn, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, encode(n))).Commit()
		if err != nil {
			return fmt.Errorf("recording the overlay layout: %w", err)
		}
		if txn.Succeeded {
			return nil
		}
		if resp, err = s.client.Get(ctx, key); err != nil {
			return err
		}
	}
	have, err := decodeNetwork(resp.Kvs[0].Value)
	if err != nil {
		return fmt.Errorf("the cluster's overlay layout at %s: %w", key, err)
	}
	if err := have.Differs(n); err != nil {
		return err
	}
	if !have.IPv6.IsValid() && n.IPv6.IsValid() {
		return s.recordIPv6(ctx, have, n.IPv6, resp.Kvs[0].ModRevision)
	}
	if have.IPv6.IsValid() && !n.IPv6.IsValid() && s.log != nil {
		s.log.Warn("the cluster's overlay has IPv6 addresses and this router has no overlay_ipv6: its containers get none", "overlay_ipv6", have.IPv6)
	}
	return nil
}

// recordIPv6 adds an IPv6 prefix to a layout recorded without one (by a
// router from before they were recorded, or one without IPv6), so that a
// router with another prefix is refused from then on. Another router
// recording one first makes the layout read again and compared; a host
// whose role may not write the layout (authentication on: the
// administrator writes it, SetNetwork) goes on unrecorded, said once.
func (s *Store) recordIPv6(ctx context.Context, have cluster.Network, prefix netip.Prefix, rev int64) error {
	key := s.keys.network()
	want := have
	want.IPv6 = prefix
	txn, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, encode(want))).Commit()
	switch {
	case isPermissionDenied(err):
		if s.log != nil {
			s.log.Warn("the cluster's overlay layout has no overlay_ipv6 and this host may not record it: the administrator sets it", "overlay_ipv6", prefix)
		}
		return nil
	case err != nil:
		return fmt.Errorf("recording overlay_ipv6 %s in the layout: %w", prefix, err)
	case !txn.Succeeded:
		return s.ensureNetwork(ctx, want)
	}
	return nil
}

func (s *Store) grant(ctx context.Context, ttl time.Duration) (clientv3.LeaseID, error) {
	resp, err := s.client.Grant(ctx, int64(ttl.Seconds()))
	if err != nil {
		return 0, fmt.Errorf("granting a lease: %w", err)
	}
	return resp.ID, nil
}

// revoke drops a lease in the background, best effort.
func (s *Store) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	s.client.Revoke(ctx, id)
}

// records are what the store holds of a host when it joins.
type records struct {
	claims    map[netip.Prefix]*mvccpb.KeyValue
	mine      []netip.Prefix // subnets claimed for this host's ID
	member    *mvccpb.KeyValue
	listeners *mvccpb.KeyValue
}

func (s *Store) readRecords(ctx context.Context, id string) (records, error) {
	r := records{claims: map[netip.Prefix]*mvccpb.KeyValue{}}
	resp, err := s.client.Txn(ctx).Then(
		clientv3.OpGet(s.keys.subnets(), clientv3.WithPrefix()),
		clientv3.OpGet(s.keys.member(id)),
		clientv3.OpGet(s.keys.listeners(id)),
	).Commit()
	if err != nil {
		return r, err
	}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		p := s.keys.parse(string(kv.Key))
		if p.kind != kindClaim {
			continue
		}
		r.claims[p.subnet] = kv
		if c, err := decodeClaim(p.subnet, kv.Value); err == nil && c.ID == id {
			r.mine = append(r.mine, p.subnet)
		}
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		r.member = kvs[0]
	}
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) > 0 {
		r.listeners = kvs[0]
	}
	return r, nil
}

// claimSubnet takes a subnet for self and publishes its member record,
// in one transaction per candidate subnet, until one succeeds.
func (s *Store) claimSubnet(ctx context.Context, self cluster.Self, live, claim clientv3.LeaseID) (cluster.Member, error) {
	for {
		r, err := s.readRecords(ctx, self.ID)
		if err != nil {
			return cluster.Member{}, err
		}
		if err := s.checkIdentity(self, r); err != nil {
			return cluster.Member{}, err
		}
		candidates, err := s.candidates(self, r)
		if err != nil {
			return cluster.Member{}, err
		}
		for _, subnet := range candidates {
			member := cluster.Member{ID: self.ID, Underlay: self.Underlay, Subnet: subnet, PeerPort: self.PeerPort}
			won, err := s.tryClaim(ctx, member, r, live, claim)
			if err != nil {
				return cluster.Member{}, err
			}
			if won {
				s.adoptRecords(r, live, claim)
				return member, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return cluster.Member{}, err
		}
	}
}

// checkIdentity refuses to take over the records of another host that
// uses the same ID.
func (s *Store) checkIdentity(self cluster.Self, r records) error {
	if r.member == nil {
		return nil
	}
	m, err := decodeMember(self.ID, r.member.Value)
	if err == nil && m.Underlay != self.Underlay {
		return fmt.Errorf("host id %s is a member at %s; this host is %s: give it another id, or wait %v for that member's record to expire if it is gone",
			self.ID, m.Underlay, self.Underlay, s.config.ttl())
	}
	return nil
}

// candidates are the subnets to try, in order: the wanted one, or the
// one this host holds, or free ones from a place that depends on the ID
// (so that hosts joining at once seldom race for the same one).
func (s *Store) candidates(self cluster.Self, r records) ([]netip.Prefix, error) {
	if self.Subnet.IsValid() {
		if kv, held := r.claims[self.Subnet]; held && !contains(r.mine, self.Subnet) {
			return nil, fmt.Errorf("subnet %s: %w (claim %s)", self.Subnet, cluster.ErrSubnetTaken, kv.Value)
		}
		return []netip.Prefix{self.Subnet}, nil
	}
	if len(r.mine) > 0 {
		return r.mine[:1], nil
	}
	n := self.Network
	count := n.Subnets()
	h := fnv.New32a()
	h.Write([]byte(self.ID))
	start := int(h.Sum32() % uint32(count))
	var free []netip.Prefix
	for i := 0; i < count && len(free) < maxCandidates; i++ {
		p := n.Subnet((start + i) % count)
		if _, held := r.claims[p]; !held {
			free = append(free, p)
		}
	}
	if len(free) == 0 {
		return nil, fmt.Errorf("%w: all %d /%d subnets of %s are held", cluster.ErrNoSubnet, count, n.HostBits, n.Overlay)
	}
	return free, nil
}

func contains(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// tryClaim writes the claim, the member record and the listeners record
// if none of them changed since they were read; other subnets this host
// held are released in the same transaction.
func (s *Store) tryClaim(ctx context.Context, m cluster.Member, r records, live, claim clientv3.LeaseID) (bool, error) {
	claimKey := s.keys.subnet(m.Subnet)
	listeners, err := s.joinListeners(r)
	if err != nil {
		return false, err
	}
	cmps := []clientv3.Cmp{
		unchanged(claimKey, r.claims[m.Subnet]),
		unchanged(s.keys.member(m.ID), r.member),
		unchanged(s.keys.listeners(m.ID), r.listeners),
	}
	ops := []clientv3.Op{
		clientv3.OpPut(claimKey, encode(cluster.Claim{Subnet: m.Subnet, ID: m.ID, Underlay: m.Underlay}), clientv3.WithLease(claim)),
		clientv3.OpPut(s.keys.member(m.ID), encode(m), clientv3.WithLease(live)),
		clientv3.OpPut(s.keys.listeners(m.ID), listeners.value, clientv3.WithLease(live)),
	}
	for _, old := range r.mine {
		if old != m.Subnet {
			cmps = append(cmps, unchanged(s.keys.subnet(old), r.claims[old]))
			ops = append(ops, clientv3.OpDelete(s.keys.subnet(old)))
		}
	}
	resp, err := s.client.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, err
	}
	if resp.Succeeded {
		s.mu.Lock()
		s.joined, s.member, s.live, s.claim = true, m, live, claim
		s.self = cluster.Self{ID: m.ID, Underlay: m.Underlay, Subnet: m.Subnet, PeerPort: m.PeerPort}
		s.published = max(s.published, listeners.generation)
		s.mu.Unlock()
	}
	return resp.Succeeded, nil
}

// joinRecord is the listeners record a join writes, and the generation
// of PublishListeners it holds.
type joinRecord struct {
	value      string
	generation uint64
}

// joinListeners is what a join writes as the host's listeners: those
// published before Join, or else those of the router that ran before
// (a restarted router serves the same listeners; it publishes its own
// list right after).
func (s *Store) joinListeners(r records) (joinRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := joinRecord{value: `{"listeners":[]}`}
	if s.generation > 0 {
		data, err := encodeListeners(s.desired)
		out.value, out.generation = string(data), s.generation
		return out, err
	}
	if r.listeners != nil {
		out.value = string(r.listeners.Value)
	}
	return out, nil
}

// unchanged compares a key with what was read of it (absent if kv is nil).
func unchanged(key string, kv *mvccpb.KeyValue) clientv3.Cmp {
	if kv == nil {
		return clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
	}
	return clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)
}

// adoptRecords revokes the leases of the router that ran before with
// this ID, now that its records are under this one's leases.
func (s *Store) adoptRecords(r records, live, claim clientv3.LeaseID) {
	old := map[clientv3.LeaseID]bool{}
	for _, kv := range []*mvccpb.KeyValue{r.member, r.listeners} {
		if kv != nil && kv.Lease != 0 {
			old[clientv3.LeaseID(kv.Lease)] = true
		}
	}
	for _, p := range r.mine {
		if kv := r.claims[p]; kv.Lease != 0 {
			old[clientv3.LeaseID(kv.Lease)] = true
		}
	}
	delete(old, live)
	delete(old, claim)
	for id := range old {
		s.revoke(id)
	}
}

func isLeaseNotFound(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound) || rpctypes.ErrorDesc(err) == rpctypes.ErrLeaseNotFound.Error()
}
