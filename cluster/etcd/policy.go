package etcd

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/cluster"
)

// EditPolicy changes the policy key with a compare-and-swap transaction,
// calling edit again if another change got in first. It needs no Join:
// an operator's tool may edit the policy too.
func (s *Store) EditPolicy(ctx context.Context, edit func([]byte) ([]byte, error)) (cluster.Policy, error) {
	key := s.keys.policy()
	for {
		resp, err := s.client.Get(ctx, key)
		if err != nil {
			s.health.failed(err)
			return cluster.Policy{}, fmt.Errorf("reading the cluster's policy: %w", err)
		}
		var current []byte
		var modRev int64
		if len(resp.Kvs) > 0 {
			current, modRev = resp.Kvs[0].Value, resp.Kvs[0].ModRevision
		}
		next, err := edit(current)
		if err != nil {
			return cluster.Policy{}, err
		}
		txn, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", modRev)).
			Then(clientv3.OpPut(key, string(next))).Commit()
		if err != nil {
			s.health.failed(err)
			return cluster.Policy{}, fmt.Errorf("writing the cluster's policy: %w", err)
		}
		if txn.Succeeded {
			s.health.wrote()
			return cluster.Policy{Rules: next, Revision: txn.Header.Revision}, nil
		}
	}
}
