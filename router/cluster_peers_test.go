package router

import (
	"net/netip"
	"testing"
	"time"

	"github.com/slimnet/slim/cluster"
)

func peerMember(id string, n byte) cluster.Member {
	return cluster.Member{
		ID: id, Underlay: netip.AddrFrom4([4]byte{198, 18, 0, n}),
		Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, n, 0}), 24),
	}
}

func stateOf(members ...cluster.Member) *cluster.State {
	b := cluster.NewState().Edit()
	for _, m := range members {
		b.SetClaim(cluster.Claim{Subnet: m.Subnet, ID: m.ID, Underlay: m.Underlay})
		b.SetMember(m)
	}
	return b.Done()
}

// TestStorePeersListTheOtherMembers: a router on a cluster store shows the
// store's other members as its peers (it showed none: "peers 0/0").
func TestStorePeersListTheOtherMembers(t *testing.T) {
	h1, h2, h3 := peerMember("h1", 1), peerMember("h2", 2), peerMember("h3", 3)
	var peers storePeers
	start := time.Unix(1000, 0)
	peers.fromState(stateOf(h1, h2, h3), "h1", nil, start)
	view := peers.view(true)
	if len(view) != 2 || view[0].Host != h2.Underlay || view[1].Host != h3.Underlay {
		t.Fatalf("peers of h1: %+v", view)
	}
	for _, p := range view {
		if !p.Connected || !p.LastDirectory.Equal(start) {
			t.Fatalf("peer %s: connected %v, heard %v", p.Host, p.Connected, p.LastDirectory)
		}
	}
	if view[0].Subnet != h2.Subnet {
		t.Fatalf("h2's subnet shown as %s", view[0].Subnet)
	}

	later := start.Add(time.Minute)
	peers.fromState(stateOf(h1, h2), "h1", map[netip.Addr]bool{h2.Underlay: true}, later)
	view = peers.view(true)
	if len(view) != 1 || !view[0].LastDirectory.Equal(later) {
		t.Fatalf("after h3 left and h2 published: %+v", view)
	}
	if peers.view(false)[0].Connected {
		t.Fatal("a peer shows as up while the router is disconnected from the store")
	}
}

// TestStorePeersFromTheSavedState: a router serving from its saved state
// lists the saved hosts, none up, until the store answers.
func TestStorePeersFromTheSavedState(t *testing.T) {
	h2 := peerMember("h2", 2)
	var peers storePeers
	peers.fromCache(map[netip.Addr]netip.Prefix{h2.Underlay: h2.Subnet})
	view := peers.view(true)
	if len(view) != 1 || view[0].Connected || !view[0].LastDirectory.IsZero() {
		t.Fatalf("saved peers: %+v", view)
	}
	peers.fromState(stateOf(peerMember("h1", 1), h2), "h1", nil, time.Unix(1000, 0))
	if view = peers.view(true); len(view) != 1 || !view[0].Connected {
		t.Fatalf("after the store's first state: %+v", view)
	}
}
