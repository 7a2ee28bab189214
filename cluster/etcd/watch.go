package etcd

import (
	"context"
	"errors"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/cluster"
)

// pageSize is how many keys one read of a full listing returns.
const pageSize = 1000

// errWatchEnded: etcd ended the watch without saying why.
var errWatchEnded = errors.New("etcd ended the watch")

// relist reads everything under the prefix at one revision and makes it
// the state; it returns that revision.
func (s *Store) relist(ctx context.Context) (int64, error) {
	kvs, rev, err := s.readAll(ctx)
	if err != nil {
		return 0, err
	}
	var problems []string
	problems = append(problems, s.view.Update(func(b *cluster.Builder) {
		b.Reset()
		for _, kv := range kvs {
			if err := s.keys.put(b, kv); err != nil {
				problems = append(problems, err.Error())
			}
		}
		b.SetRevision(rev)
	})...)
	s.report(problems)
	s.health.watched()
	return rev, nil
}

// readAll reads the prefix in pages, all at the revision of the first.
func (s *Store) readAll(ctx context.Context) ([]*mvccpb.KeyValue, int64, error) {
	end := clientv3.GetPrefixRangeEnd(s.keys.prefix)
	from, rev := s.keys.prefix, int64(0)
	var kvs []*mvccpb.KeyValue
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.client.Get(ctx, from, opts...)
		if err != nil {
			return nil, 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		kvs = append(kvs, resp.Kvs...)
		if !resp.More || len(resp.Kvs) == 0 {
			return kvs, rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// follow keeps the state current from revision rev on: it watches the
// prefix, resumes after an interruption from the last revision applied,
// and reads everything again when that revision was compacted away.
func (s *Store) follow(rev int64) {
	wait := retryMin
	for s.ctx.Err() == nil {
		next, err := s.watchFrom(rev)
		if next > rev {
			rev, wait = next, retryMin
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			if rev, err = s.resync(rev); err == nil {
				continue
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		s.health.failed(err)
		s.log.Warn("etcd watch interrupted; resuming", "revision", rev, "err", err, "in", wait)
		if !s.sleep(wait) {
			return
		}
		wait = backoff(wait)
	}
}

// resync reads everything again after a compaction.
func (s *Store) resync(rev int64) (int64, error) {
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	next, err := s.relist(ctx)
	if err != nil {
		return rev, err
	}
	s.health.resynced()
	s.log.Info("re-read the cluster after a compaction", "from", rev, "to", next)
	return next, nil
}

// watchFrom applies changes after revision rev until the watch ends; it
// returns the last revision applied.
func (s *Store) watchFrom(rev int64) (int64, error) {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
	defer cancel()
	ch := s.client.Watch(ctx, s.keys.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	for resp := range ch {
		if resp.CompactRevision != 0 {
			return rev, rpctypes.ErrCompacted
		}
		if err := resp.Err(); err != nil {
			return rev, err
		}
		s.health.watched()
		rev = s.apply(resp, rev)
	}
	if err := s.ctx.Err(); err != nil {
		return rev, err
	}
	return rev, errWatchEnded
}

// apply makes a watch response's events part of the state. Events carry
// their revision; a progress notification (no events) says every event
// up to its header's revision was sent.
func (s *Store) apply(resp clientv3.WatchResponse, rev int64) int64 {
	if len(resp.Events) == 0 {
		if resp.Header.Revision <= rev {
			return rev
		}
		rev = resp.Header.Revision
	} else {
		rev = max(rev, resp.Events[len(resp.Events)-1].Kv.ModRevision)
	}
	var problems []string
	problems = append(problems, s.view.Update(func(b *cluster.Builder) {
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete {
				s.keys.remove(b, ev.Kv.Key)
			} else if err := s.keys.put(b, ev.Kv); err != nil {
				problems = append(problems, err.Error())
			}
		}
		b.SetRevision(rev)
	})...)
	s.report(problems)
	return rev
}

// report logs records the state refused, and keeps the last for Health.
func (s *Store) report(problems []string) {
	for _, p := range problems {
		s.log.Warn("refusing a cluster record", "problem", p)
	}
	if len(problems) > 0 {
		s.health.problem(strings.Join(problems, "; "))
	}
}
