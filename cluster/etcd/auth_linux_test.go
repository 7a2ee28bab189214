package etcd

import (
	"context"
	"net/netip"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/cluster"
)

// TestIntegrationHostWritesOnlyItsOwnRecords attacks from a host whose
// certificate is valid (a compromised host): with etcd's authentication
// on and the roles GrantHost makes, it cannot rewrite or delete another
// host's member record or listeners (to redirect that host's clients to
// itself), nor the policy or the overlay layout; its own store works as
// usual, and the victim's listeners stay as published.
func TestIntegrationHostWritesOnlyItsOwnRecords(t *testing.T) {
	e := newEnv(t, ownEtcd(t, 1))
	root := withAuth(t, e, "h1", "h2")
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	victim := e.store("h1", nil)
	m1 := e.join(victim, host(1, ""))
	published := listeners(m1, 80, 1)
	if err := victim.WaitPublished(ctx, victim.PublishListeners(published)); err != nil {
		t.Fatalf("a host with its own role cannot publish: %v", err)
	}
	attacker := e.store("h2", nil)
	m2 := e.join(attacker, host(2, ""))
	if err := attacker.WaitPublished(ctx, attacker.PublishListeners(listeners(m2, 80, 1))); err != nil {
		t.Fatalf("the attacker's own publishing failed: %v", err)
	}

	raw, err := e.scratch.Client("h2")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	k := keys{prefix: e.prefix}
	// h1's listener, pointed at the attacker's host.
	redirect := `{"listeners":[["` + published[0].Overlay.String() + `","` +
		netip.AddrPortFrom(m2.Underlay, 31337).String() + `"]]}`
	forgedMember := encode(cluster.Member{ID: "h1", Underlay: m2.Underlay, Subnet: m1.Subnet})
	attacks := map[string]clientv3.Op{
		"rewrite h1's listeners": clientv3.OpPut(k.listeners("h1"), redirect),
		"rewrite h1's member":    clientv3.OpPut(k.member("h1"), forgedMember),
		"delete h1's records":    clientv3.OpDelete(k.host("h1"), clientv3.WithPrefix()),
		"write the policy":       clientv3.OpPut(k.policy(), `{"version":1,"rules":[]}`),
		"rewrite the network":    clientv3.OpPut(k.network(), `{"overlay":"198.19.0.0/16","host_bits":26}`),
	}
	for name, op := range attacks {
		_, err := raw.Do(ctx, op)
		if rpctypes.ErrorDesc(err) != rpctypes.ErrPermissionDenied.Error() {
			t.Errorf("%s: %v, want permission denied", name, err)
		}
	}
	if _, err := attacker.EditPolicy(ctx, func(b []byte) ([]byte, error) { return []byte("{}"), nil }); err == nil {
		t.Error("a host without the policy grant edited the policy")
	}
	resp, err := root.Get(ctx, k.listeners("h1"))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("h1's listeners after the attacks: %v %v", resp, err)
	}
	if got, _ := decodeListeners(resp.Kvs[0].Value); len(got) != 1 || got[0] != published[0] {
		t.Fatalf("h1's listeners after the attacks: %v", got)
	}
	eventually(t, attacker, "h1's listeners as published", func(st *cluster.State) bool { return hasListeners(st, "h1", published) })
}

// TestIntegrationNetworkIPv6ByAdministrator: with authentication on, a
// host may not add its IPv6 prefix to the layout; it joins all the same
// (the layout is the administrator's), and once the administrator records
// a prefix, a host with another one is refused.
func TestIntegrationNetworkIPv6ByAdministrator(t *testing.T) {
	e := newEnv(t, ownEtcd(t, 1))
	root := withAuth(t, e, "h1", "h2")
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	first := host(1, "")
	first.Network.IPv6 = netip.MustParsePrefix("2001:2::/96")
	e.join(e.store("h1", nil), first)

	recorded := testNetwork
	recorded.IPv6 = netip.MustParsePrefix("2001:2:0:1::/96")
	if err := SetNetwork(ctx, root, e.prefix, recorded); err != nil {
		t.Fatalf("the administrator could not add overlay_ipv6: %v", err)
	}
	second := host(2, "")
	second.Network.IPv6 = first.Network.IPv6
	if _, err := e.store("h2", nil).Join(ctx, second); err == nil {
		t.Fatal("a host with another overlay_ipv6 than the administrator's joined")
	}
}

// withAuth records the test network as the administrator, grants each host
// its role and turns authentication on; it returns root's client.
func withAuth(t *testing.T, e *env, hosts ...string) *clientv3.Client {
	t.Helper()
	root := rootClient(t, e.scratch)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for _, id := range hosts {
		if err := GrantHost(ctx, root, id, Grants{Prefix: e.prefix}); err != nil {
			t.Fatal(err)
		}
	}
	if err := SetNetwork(ctx, root, e.prefix, testNetwork); err != nil {
		t.Fatal(err)
	}
	if err := EnableAuth(ctx, root); err != nil {
		t.Fatal(err)
	}
	return root
}
