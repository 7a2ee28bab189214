package etcd

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/cluster"
)

// keepAlive renews the member lease every third of its TTL and the
// claim lease every third of the grace period (at most a minute apart),
// and makes the records again when a lease has expired (a partition
// longer than it): the host gets its member record back at once, and
// its subnet back if no other host claimed it meanwhile.
func (s *Store) keepAlive() {
	interval := s.config.ttl() / 3
	claimInterval := min(s.config.grace()/3, time.Minute)
	nextClaim := time.Now().Add(claimInterval)
	wait := interval
	for s.sleepOrRejoin(wait) {
		s.mu.Lock()
		live, claim := s.live, s.claim
		s.mu.Unlock()
		err := s.renew(live, interval)
		if err == nil && time.Now().After(nextClaim) {
			if err = s.renew(claim, interval); err == nil {
				nextClaim = time.Now().Add(claimInterval)
			}
		}
		if isLeaseNotFound(err) {
			err = s.restore()
		}
		if err != nil {
			s.health.failed(err)
			wait = min(backoff(max(wait/2, retryMin)), interval)
			continue
		}
		s.health.renewed()
		wait = interval
	}
}

// sleepOrRejoin waits d, or less if a write found the member lease gone;
// false if the store stopped.
func (s *Store) sleepOrRejoin(d time.Duration) bool {
	select {
	case <-s.ctx.Done():
		return false
	case <-s.rejoin:
		return true
	case <-time.After(d):
		return true
	}
}

func (s *Store) renew(id clientv3.LeaseID, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	_, err := s.client.KeepAliveOnce(ctx, id)
	return err
}

// restore makes whichever lease has expired again, with its records.
func (s *Store) restore() error {
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	s.mu.Lock()
	live, claim, m := s.live, s.claim, s.member
	s.mu.Unlock()
	if err := s.renew(claim, opTimeout); isLeaseNotFound(err) {
		if err := s.reclaim(ctx, m); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if err := s.renew(live, opTimeout); isLeaseNotFound(err) {
		return s.rejoinMember(ctx, m)
	} else if err != nil {
		return err
	}
	return nil
}

// reclaim claims the host's subnet again under a new lease, if no other
// host has claimed it.
func (s *Store) reclaim(ctx context.Context, m cluster.Member) error {
	lease, err := s.grant(ctx, s.config.grace())
	if err != nil {
		return err
	}
	key := s.keys.subnet(m.Subnet)
	value := encode(cluster.Claim{Subnet: m.Subnet, ID: m.ID, Underlay: m.Underlay})
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, value, clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil {
		s.revoke(lease)
		return err
	}
	if !resp.Succeeded {
		s.revoke(lease)
		holder := resp.Responses[0].GetResponseRange().Kvs
		if len(holder) > 0 && string(holder[0].Value) == value {
			return nil // claimed by this host already (a write that raced)
		}
		msg := fmt.Sprintf("this host's subnet %s was claimed by another host while this one was away (%s): "+
			"its containers' addresses now belong to that host; restart this router with another subnet", m.Subnet, holderValue(holder))
		s.health.problem(msg)
		s.log.Error(msg)
		return fmt.Errorf("%w: %s", cluster.ErrSubnetTaken, msg)
	}
	s.mu.Lock()
	s.claim = lease
	s.mu.Unlock()
	s.log.Warn("claimed this host's subnet again after its claim expired", "subnet", m.Subnet)
	return nil
}

func holderValue(kvs []*mvccpb.KeyValue) string {
	if len(kvs) == 0 {
		return "gone again"
	}
	return string(kvs[0].Value)
}

// rejoinMember publishes the member record and the latest listeners
// again under a new member lease, if the subnet is still this host's.
func (s *Store) rejoinMember(ctx context.Context, m cluster.Member) error {
	lease, err := s.grant(ctx, s.config.ttl())
	if err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	generation := s.generation
	listeners, err := encodeListeners(s.desired)
	s.mu.Unlock()
	if err != nil {
		listeners = []byte(`{"listeners":[]}`)
	}
	claimKey := s.keys.subnet(m.Subnet)
	claim := encode(cluster.Claim{Subnet: m.Subnet, ID: m.ID, Underlay: m.Underlay})
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(claimKey), "=", claim)).
		Then(clientv3.OpPut(s.keys.member(m.ID), encode(m), clientv3.WithLease(lease)),
			clientv3.OpPut(s.keys.listeners(m.ID), string(listeners), clientv3.WithLease(lease))).Commit()
	if err != nil {
		s.revoke(lease)
		return err
	}
	if !resp.Succeeded {
		s.revoke(lease)
		return fmt.Errorf("%w: subnet %s is no longer claimed for this host", cluster.ErrSubnetTaken, m.Subnet)
	}
	s.mu.Lock()
	s.live = lease
	s.mu.Unlock()
	s.markPublished(generation)
	s.log.Warn("published this host's records again after its member lease expired")
	return nil
}
