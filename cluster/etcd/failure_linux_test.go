package etcd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slimnet/slim/cluster"
)

// TestIntegrationMemberKilled: with one of three etcd members killed,
// hosts keep publishing and seeing each other's listeners.
func TestIntegrationMemberKilled(t *testing.T) {
	e := newEnv(t, ownEtcd(t, 3))
	var stores []*Store
	var members []cluster.Member
	for i := 1; i <= 3; i++ {
		s := e.store(fmt.Sprintf("h%d", i), nil)
		members = append(members, e.join(s, host(i, "")))
		stores = append(stores, s)
	}
	if err := e.scratch.Process(0).Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for i, s := range stores {
		if err := s.WaitPublished(ctx, s.PublishListeners(listeners(members[i], 80, 2))); err != nil {
			t.Fatalf("h%d with a member down: %v", i+1, err)
		}
		t.Logf("h%d published %v after the kill", i+1, time.Since(killed))
	}
	for _, s := range stores {
		eventually(t, s, "6 listeners with a member down", func(st *cluster.State) bool { return st.ListenerCount() == 6 })
	}
	// Past the member lease: the hosts renewed it through the others.
	time.Sleep(2 * testTTL * time.Second)
	for _, s := range stores {
		if state, _ := s.State(); len(state.Members()) != 3 || !s.Health().Connected {
			t.Fatalf("with a member down: members %v, health %+v", state.Members(), s.Health())
		}
	}
}

// TestIntegrationEtcdDownAndBack: with every etcd member stopped, stores
// keep their last state, nothing waits on etcd, what cannot be published
// is retried, and health says so; when etcd is back, the retried list
// lands and everyone sees it.
func TestIntegrationEtcdDownAndBack(t *testing.T) {
	e := newEnv(t, ownEtcd(t, 3))
	e.grace = 600
	h1, h2 := e.store("h1", nil), e.store("h2", nil)
	m1 := e.join(h1, host(1, ""))
	e.join(h2, host(2, ""))
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := h1.WaitPublished(ctx, h1.PublishListeners(listeners(m1, 80, 2))); err != nil {
		t.Fatal(err)
	}
	eventually(t, h2, "h1's listeners", func(s *cluster.State) bool { return len(s.Listeners("h1")) == 2 })
	up := h1.Health()
	if up.LastWrite.IsZero() || up.LastWatch.IsZero() || up.Pending != 0 || !up.PendingSince.IsZero() {
		t.Fatalf("health after a join and a publication: %+v", up)
	}

	for i := range e.scratch.Cluster.Members {
		if err := e.scratch.Process(i).Stop(); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	next := listeners(m1, 80, 3)
	generation := h1.PublishListeners(next)
	state, _ := h2.State()
	if took := time.Since(start); took > time.Second || len(state.Listeners("h1")) != 2 {
		t.Fatalf("with etcd down: publish and state took %v, state has %v", took, state.Listeners("h1"))
	}
	short, cancelShort := context.WithTimeout(context.Background(), time.Second)
	defer cancelShort()
	if err := h1.WaitPublished(short, generation); !isTimeout(err) {
		t.Fatalf("WaitPublished with etcd down: %v", err)
	}
	if _, err := h1.EditPolicy(short, func(b []byte) ([]byte, error) { return b, nil }); err == nil {
		t.Fatal("a policy edit succeeded with etcd down")
	}
	waitHealth(t, h1, "disconnected, unpublished", func(h cluster.Health) bool { return !h.Connected && h.Unpublished && h.LastError != "" })
	if down := h1.Health(); down.Pending != 1 || down.PendingSince.Before(start) || down.LastWrite != up.LastWrite {
		t.Fatalf("health with etcd down (one list waiting since %v, no write since %v): %+v", start, up.LastWrite, down)
	}
	if state, _ := h2.State(); len(state.Listeners("h1")) != 2 {
		t.Fatalf("with etcd down h2 lost its last state: %v", state.Listeners("h1"))
	}

	for i := range e.scratch.Cluster.Members {
		if _, err := e.scratch.StartMember(i, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := h1.WaitPublished(ctx, generation); err != nil {
		t.Fatalf("after etcd came back: %v", err)
	}
	eventually(t, h2, "h1's retried list", func(s *cluster.State) bool { return hasListeners(s, "h1", next) })
	waitHealth(t, h1, "connected, published", func(h cluster.Health) bool {
		return h.Connected && !h.Unpublished && h.Pending == 0 && h.LastWrite.After(up.LastWrite)
	})
}

// TestIntegrationPartitionAndHeal: a host cut off from etcd longer than
// its member lease drops out of the others' directories (their shims use
// the overlay for its listeners), keeps its own last state, and when
// the partition heals publishes its records and latest listeners again.
func TestIntegrationPartitionAndHeal(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	e.grace = 600
	l := newLink(e.scratch)
	cut, other := e.store("h1", l), e.store("h2", nil)
	m1 := e.join(cut, host(1, ""))
	m2 := e.join(other, host(2, ""))
	cut.PublishListeners(listeners(m1, 80, 2))
	other.PublishListeners(listeners(m2, 80, 1))
	eventually(t, other, "h1's listeners", func(s *cluster.State) bool { return len(s.Listeners("h1")) == 2 })
	eventually(t, cut, "h2's listeners", func(s *cluster.State) bool { return len(s.Listeners("h2")) == 1 })

	l.partition()
	latest := listeners(m1, 80, 4)
	cut.PublishListeners(latest)
	eventually(t, other, "h1 out of the directory", func(s *cluster.State) bool {
		_, member := s.Member("h1")
		return !member && len(s.Listeners("h1")) == 0 && len(s.Claims()) == 2
	})
	if state, _ := cut.State(); len(state.Listeners("h2")) != 1 {
		t.Fatalf("the cut-off host lost its last state: %v", state.Members())
	}
	waitHealth(t, cut, "disconnected", func(h cluster.Health) bool { return !h.Connected && h.Unpublished })

	l.heal()
	eventually(t, other, "h1's latest listeners after the heal", func(s *cluster.State) bool { return hasListeners(s, "h1", latest) })
	waitHealth(t, cut, "connected", func(h cluster.Health) bool { return h.Connected && !h.Unpublished })
	if state, _ := cut.State(); len(state.Members()) != 2 {
		t.Fatalf("after the heal: %v", state.Members())
	}
}

// waitHealth waits until a store's health satisfies cond.
func waitHealth(t *testing.T, s cluster.Store, what string, cond func(cluster.Health) bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond(s.Health()) {
		if time.Now().After(deadline) {
			t.Fatalf("health not %s after %v: %+v", what, patience, s.Health())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
