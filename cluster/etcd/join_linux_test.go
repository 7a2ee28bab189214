package etcd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slimnet/slim/cluster"
)

// TestIntegrationConcurrentJoins: hosts that join at once in a small
// overlay all get a subnet, no two the same, and every one of them sees
// every other; one more than there are subnets is refused, naming why.
func TestIntegrationConcurrentJoins(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	small := cluster.Network{Overlay: netip.MustParsePrefix("198.19.0.0/24"), HostBits: 28} // 16 subnets
	const hosts = 16
	stores := make([]*Store, hosts)
	members := make([]cluster.Member, hosts)
	errs := make([]error, hosts)
	var wg sync.WaitGroup
	for i := range hosts {
		stores[i] = e.store(fmt.Sprintf("h%d", i+1), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			self := host(i+1, "")
			self.Network = small
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			members[i], errs[i] = stores[i].Join(ctx, self)
		}()
	}
	wg.Wait()
	seen := map[netip.Prefix]string{}
	for i, m := range members {
		if errs[i] != nil {
			t.Fatalf("h%d: %v", i+1, errs[i])
		}
		if other, dup := seen[m.Subnet]; dup {
			t.Fatalf("%s and %s both got %s", other, m.ID, m.Subnet)
		}
		seen[m.Subnet] = m.ID
	}
	for _, s := range stores {
		eventually(t, s, "every host sees all 16", func(st *cluster.State) bool { return len(st.Members()) == hosts })
	}
	extra := host(hosts+1, "")
	extra.Network = small
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := e.store("h17", nil).Join(ctx, extra); !errors.Is(err, cluster.ErrNoSubnet) {
		t.Fatalf("a 17th host in 16 subnets: %v", err)
	}
}

// TestIntegrationRestartKeepsSubnetAndListeners: a router that stops
// without leaving and starts again with the same ID gets the same
// subnet, and its listeners never leave the other hosts' view meanwhile.
func TestIntegrationRestartKeepsSubnetAndListeners(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	watcher := e.store("h9", nil)
	e.join(watcher, host(9, ""))
	first := e.store("h1", nil)
	m := e.join(first, host(1, ""))
	ls := listeners(m, 8000, 3)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := first.WaitPublished(ctx, first.PublishListeners(ls)); err != nil {
		t.Fatal(err)
	}
	eventually(t, watcher, "h1's listeners", func(s *cluster.State) bool { return hasListeners(s, "h1", ls) })

	gaps := make(chan string, 1)
	stopWatching := watchGaps(watcher, "h1", gaps)
	first.Close()
	second := e.store("h1", nil)
	again := e.join(second, host(1, ""))
	if again.Subnet != m.Subnet {
		t.Fatalf("restarted with subnet %s, had %s", again.Subnet, m.Subnet)
	}
	// Past the first router's member lease: the records are the second's.
	time.Sleep(2 * testTTL * time.Second)
	stopWatching()
	select {
	case gap := <-gaps:
		t.Fatalf("during the restart the watcher saw %s", gap)
	default:
	}
	state, _ := watcher.State()
	if !hasListeners(state, "h1", ls) {
		t.Fatalf("after the restart: %v", state.Listeners("h1"))
	}
}

// watchGaps reports the first state in which host id has no listeners
// (or is no member), until stop is called.
func watchGaps(s cluster.Store, id string, gaps chan<- string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			state, changed := s.State()
			if _, ok := state.Member(id); !ok || len(state.Listeners(id)) == 0 {
				gaps <- fmt.Sprintf("revision %d without %s's listeners", state.Revision(), id)
				return
			}
			select {
			case <-changed:
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// TestIntegrationLeaveReleasesSubnet: a host that leaves is gone from
// every view at once, and its subnet is free for the next host.
func TestIntegrationLeaveReleasesSubnet(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	e.grace = 3600 // a subnet freed here is freed by the leave, not by time
	watcher := e.store("h9", nil)
	e.join(watcher, host(9, ""))
	leaving := e.store("h1", nil)
	m := e.join(leaving, host(1, ""))
	leaving.PublishListeners(listeners(m, 80, 2))
	eventually(t, watcher, "h1's listeners", func(s *cluster.State) bool { return len(s.Listeners("h1")) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := leaving.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, watcher, "h1 gone with its claim", func(s *cluster.State) bool {
		_, member := s.Member("h1")
		return !member && len(s.Claims()) == 1 && s.ListenerCount() == 0
	})
	next := e.store("h2", nil)
	if got := e.join(next, host(2, m.Subnet.String())); got.Subnet != m.Subnet {
		t.Fatalf("h2 got %s", got.Subnet)
	}
}

// TestIntegrationGracePeriod: a host that stops without leaving drops out
// of the directory within its member lease, but its subnet stays held
// for the grace period: the same host gets it back, another does not,
// until the grace period is over.
func TestIntegrationGracePeriod(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	watcher := e.store("h9", nil)
	e.join(watcher, host(9, ""))
	crashed := e.store("h1", nil)
	m := e.join(crashed, host(1, ""))
	crashed.PublishListeners(listeners(m, 80, 1))
	eventually(t, watcher, "h1's listener", func(s *cluster.State) bool { return len(s.Listeners("h1")) == 1 })
	crashed.Close()
	eventually(t, watcher, "h1 out of the directory, its claim kept", func(s *cluster.State) bool {
		_, member := s.Member("h1")
		return !member && s.ListenerCount() == 0 && len(s.Claims()) == 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := e.store("h2", nil).Join(ctx, host(2, m.Subnet.String())); !errors.Is(err, cluster.ErrSubnetTaken) {
		t.Fatalf("h2 took h1's subnet within the grace period: %v", err)
	}
	back := e.store("h1", nil)
	if got := e.join(back, host(1, "")); got.Subnet != m.Subnet {
		t.Fatalf("h1 came back with %s, had %s", got.Subnet, m.Subnet)
	}
	back.Close()
	eventually(t, watcher, "h1's claim expired", func(s *cluster.State) bool { return len(s.Claims()) == 1 })
	if got := e.join(e.store("h2", nil), host(2, m.Subnet.String())); got.Subnet != m.Subnet {
		t.Fatalf("after the grace period h2 got %s", got.Subnet)
	}
}

// TestIntegrationSameIDElsewhereRefused: a second host that uses an ID a
// live member has is refused, and the member keeps its records.
func TestIntegrationSameIDElsewhereRefused(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	e.join(e.store("h1", nil), host(1, ""))
	impostor := host(2, "")
	impostor.ID = "h1"
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := e.store("h1", nil).Join(ctx, impostor); err == nil {
		t.Fatal("a second host joined with a member's ID")
	}
}

// TestIntegrationNetworkMismatchRefused: a router whose overlay layout
// differs from the cluster's is refused.
func TestIntegrationNetworkMismatchRefused(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	e.join(e.store("h1", nil), host(1, ""))
	other := host(2, "")
	other.Network.HostBits = 26
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if _, err := e.store("h2", nil).Join(ctx, other); err == nil {
		t.Fatal("a router with another host_bits joined")
	}
}

// TestIntegrationNetworkIPv6Recorded: the IPv6 prefix joins the recorded
// layout (also when the layout was recorded without one, by a router from
// before), a router with another prefix is then refused with both named,
// and a router without one still joins (its containers get no IPv6).
func TestIntegrationNetworkIPv6Recorded(t *testing.T) {
	e := newEnv(t, sharedEtcd(t))
	e.join(e.store("h1", nil), host(1, ""))
	withIPv6 := func(i int, prefix string) cluster.Self {
		self := host(i, "")
		self.Network.IPv6 = netip.MustParsePrefix(prefix)
		return self
	}
	e.join(e.store("h2", nil), withIPv6(2, "2001:2::/96"))
	if got := recordedNetwork(t, e); got.IPv6 != netip.MustParsePrefix("2001:2::/96") {
		t.Fatalf("the layout after a router with overlay_ipv6 joined: %+v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	_, err := e.store("h3", nil).Join(ctx, withIPv6(3, "2001:2:0:1::/96"))
	if err == nil || !strings.Contains(err.Error(), "2001:2:0:1::/96") || !strings.Contains(err.Error(), "2001:2::/96") {
		t.Fatalf("a router with another overlay_ipv6 joined or was not told why: %v", err)
	}
	e.join(e.store("h4", nil), host(4, ""))
	if got := recordedNetwork(t, e); got.IPv6 != netip.MustParsePrefix("2001:2::/96") {
		t.Fatalf("a router without overlay_ipv6 changed the layout: %+v", got)
	}
}

func recordedNetwork(t *testing.T, e *env) cluster.Network {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	k := keys{prefix: e.prefix}
	resp, err := rootClient(t, e.scratch).Get(ctx, k.network())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("reading the layout: %v %v", resp, err)
	}
	n, err := decodeNetwork(resp.Kvs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
