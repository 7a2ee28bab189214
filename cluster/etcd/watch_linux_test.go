package etcd

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/cluster"
)

// TestIntegrationDirectory: each host's listeners reach every other
// host, changes and removals too, and WaitPublished returns once etcd
// has a list. A store that joins late has the whole directory from its
// first read.
func TestIntegrationDirectory(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	var stores []*Store
	var members []cluster.Member
	for i := 1; i <= 3; i++ {
		s := e.store(fmt.Sprintf("h%d", i), nil)
		members = append(members, e.join(s, host(i, "")))
		stores = append(stores, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for i, s := range stores {
		if err := s.WaitPublished(ctx, s.PublishListeners(listeners(members[i], 80, 5))); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range stores {
		eventually(t, s, "15 listeners", func(st *cluster.State) bool { return st.ListenerCount() == 15 })
	}
	changed := listeners(members[0], 9000, 2)
	stores[0].PublishListeners(changed)
	for _, s := range stores {
		eventually(t, s, "h1's new list", func(st *cluster.State) bool { return hasListeners(st, "h1", changed) })
	}
	late := e.store("h4", nil)
	e.join(late, host(4, ""))
	if state, _ := late.State(); state.ListenerCount() != 12 || len(state.Members()) != 3 {
		t.Fatalf("a late joiner's first state: %d listeners, members %v", state.ListenerCount(), state.Members())
	}
	stores[1].PublishListeners(nil)
	eventually(t, late, "h2's listeners gone", func(st *cluster.State) bool { return st.ListenerCount() == 7 })
}

// TestIntegrationPublishCoalesces: many lists published in a burst land
// as few writes, and the last one wins.
func TestIntegrationPublishCoalesces(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	s := e.store("h1", nil)
	m := e.join(s, host(1, ""))
	client := rootClient(t, e.scratch)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	before, err := client.Get(ctx, s.keys.listeners("h1"))
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	const burst = 200
	for i := 1; i <= burst; i++ {
		last = s.PublishListeners(listeners(m, 1000, i))
	}
	if err := s.WaitPublished(ctx, last); err != nil {
		t.Fatal(err)
	}
	after, err := client.Get(ctx, s.keys.listeners("h1"))
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := decodeListeners(after.Kvs[0].Value)
	writes := after.Kvs[0].Version - before.Kvs[0].Version
	if len(ls) != burst || writes >= burst {
		t.Fatalf("%d lists published: %d writes, the last has %d listeners", burst, writes, len(ls))
	}
	t.Logf("%d lists published in a burst: %d writes", burst, writes)
}

// TestIntegrationCompactionWhileDisconnected: a store cut off from etcd
// while the cluster changes and etcd compacts its history reads the
// whole state again when it is back, and ends up with what the others
// see.
func TestIntegrationCompactionWhileDisconnected(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	l := newLink(e.scratch)
	away := e.store("h9", l)
	e.join(away, host(9, ""))
	h1 := e.store("h1", nil)
	m1 := e.join(h1, host(1, ""))
	h1.PublishListeners(listeners(m1, 80, 3))
	eventually(t, away, "h1's listeners", func(s *cluster.State) bool { return len(s.Listeners("h1")) == 3 })

	l.partition()
	h2 := e.store("h2", nil)
	m2 := e.join(h2, host(2, ""))
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := h2.WaitPublished(ctx, h2.PublishListeners(listeners(m2, 443, 2))); err != nil {
		t.Fatal(err)
	}
	if err := h1.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	client := rootClient(t, e.scratch)
	resp, err := client.Get(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if state, _ := away.State(); len(state.Listeners("h1")) != 3 {
		t.Fatalf("while cut off the store lost its last state: %v", state.Members())
	} else if _, ok := state.Member("h2"); ok {
		t.Fatalf("the store saw h2 join while it was cut off: the partition did not cut it")
	}
	l.heal()
	eventually(t, away, "the state after the compaction", func(s *cluster.State) bool {
		_, h1 := s.Member("h1")
		return !h1 && len(s.Listeners("h2")) == 2 && s.Revision() >= resp.Header.Revision
	})
	if h := away.Health(); h.Resyncs < 1 {
		t.Fatalf("no re-read after the compaction: %+v", h)
	}
}

// TestIntegrationPolicyTransactions: edits from several hosts at once
// all land (each sees the others' result), and every host sees the
// final policy.
func TestIntegrationPolicyTransactions(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	var stores []*Store
	for i := 1; i <= 3; i++ {
		s := e.store(fmt.Sprintf("h%d", i), nil)
		e.join(s, host(i, ""))
		stores = append(stores, s)
	}
	const edits = 10
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*edits)
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range edits {
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				_, err := s.EditPolicy(ctx, func(old []byte) ([]byte, error) {
					return append(old, fmt.Sprintf("h%d.%d;", i+1, j)...), nil
				})
				cancel()
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range stores {
		eventually(t, s, "every edit", func(st *cluster.State) bool {
			return len(st.Policy().Rules) > 0 && countEdits(st.Policy().Rules) == len(stores)*edits
		})
	}
}

func countEdits(rules []byte) int {
	n := 0
	for _, b := range rules {
		if b == ';' {
			n++
		}
	}
	return n
}

// TestIntegrationStateNeverWaits: State, PublishListeners and Health
// answer at once while etcd is unreachable.
func TestIntegrationStateNeverWaits(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	l := newLink(e.scratch)
	s := e.store("h1", l)
	m := e.join(s, host(1, ""))
	l.partition()
	defer l.heal()
	start := time.Now()
	for i := range 1000 {
		s.PublishListeners(listeners(m, 80, i%10))
		s.State()
		s.Health()
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("1000 calls while etcd is unreachable took %v", took)
	}
}
