package census

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/router/sockdiag"
)

var (
	h1 = netip.MustParseAddr("198.18.0.1")
	h2 = netip.MustParseAddr("198.18.0.2")
)

func mapping(overlay, host string) protocol.Mapping {
	return protocol.Mapping{Overlay: netip.MustParseAddrPort(overlay), Host: netip.MustParseAddrPort(host)}
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestCensusClientsToSend: the client connections of a sweep, grouped by
// the peer that serves them, are what each peer is told; a sweep that
// changes them wakes the senders, one that does not leaves them asleep.
func TestCensusClientsToSend(t *testing.T) {
	c := New()
	t0 := time.Unix(1700000000, 0)
	c.HandedOut("h1-c2", []uint64{10, 11}, t0)
	c.HandedOut("h1-c1", []uint64{20}, t0)
	sockets := []Socket{
		sock(10, sockdiag.Established, "198.18.0.1:50000", "198.18.0.2:40002", 1, 1), // h1-c2 → h2-c1
		sock(11, sockdiag.Established, "198.18.0.1:50002", "198.18.0.2:40002", 1, 1), // again
		sock(20, sockdiag.Established, "198.18.0.1:50001", "198.18.0.1:40001", 1, 1), // to this host: no peer's business
		sock(30, sockdiag.Established, "198.18.0.1:40001", "198.18.0.1:50001", 1, 1),
	}
	_, _, woken := c.ClientsFor(h2, h1)
	c.Update(t0, sockets, testDirectory())
	if !closed(woken) {
		t.Error("the first sweep with client connections did not wake the senders")
	}
	list, omitted, changed := c.ClientsFor(h2, h1)
	want := []protocol.Mapping{mapping("198.19.1.3:50000", "198.18.0.1:50000"), mapping("198.19.1.3:50002", "198.18.0.1:50002")}
	if !slices.Equal(list, want) || omitted != 0 {
		t.Errorf("list for h2: %v (%d left out), want %v", list, omitted, want)
	}
	if list, _, _ := c.ClientsFor(h1, h1); len(list) != 0 {
		t.Errorf("connections within this host listed for a peer: %v", list)
	}
	if list, _, _ := c.ClientsFor(h2, netip.MustParseAddr("198.18.0.9")); len(list) != 0 {
		t.Errorf("host sockets of another address listed: %v", list)
	}

	sockets[0].BytesIn += 100 // counters move; the list does not
	c.Update(t0.Add(time.Second), sockets, testDirectory())
	if closed(changed) {
		t.Error("a sweep that changed no client connection woke the senders")
	}
	c.Update(t0.Add(2*time.Second), sockets[1:], testDirectory())
	if !closed(changed) {
		t.Error("a closed client connection did not wake the senders")
	}
	if list, _, _ := c.ClientsFor(h2, h1); !slices.Equal(list, want[1:]) {
		t.Errorf("after a close: %v, want %v", list, want[1:])
	}
}

// TestCensusJoinsRemoteClients: a server-side connection from a client on
// a peer shows the client's overlay address once that peer listed it, and
// no longer when the connection that brought the list ends.
func TestCensusJoinsRemoteClients(t *testing.T) {
	c := New()
	t0 := time.Unix(1700000000, 0)
	c.HandedOut("h1-c1", []uint64{20}, t0)
	sockets := []Socket{
		sock(20, sockdiag.Established, "198.18.0.1:50001", "198.18.0.1:40001", 10, 20), // h1-c1 → itself
		sock(30, sockdiag.Established, "198.18.0.1:40001", "198.18.0.1:50001", 20, 10),
		sock(31, sockdiag.Established, "198.18.0.1:40001", "198.18.0.2:51000", 5000, 0), // a client on h2
		sock(32, sockdiag.Established, "198.18.0.1:40001", "198.18.0.2:51001", 5000, 0), // one h2 did not list
	}
	c.Update(t0, sockets, testDirectory())
	peerOf := func() map[uint64]string {
		got := map[uint64]string{}
		for _, conn := range c.Connections() {
			got[conn.Cookie] = conn.Peer.String()
		}
		return got
	}
	if got := peerOf(); got[31] != "invalid AddrPort" {
		t.Fatalf("before h2's list: peer of 31 is %s", got[31])
	}
	c.SetRemoteClients(h2, 7, []protocol.Mapping{
		mapping("198.19.2.2:51000", "198.18.0.2:51000"),
		mapping("198.19.2.9:50001", "198.18.0.2:50001"), // same port as a local client: another host
	})
	want := map[uint64]string{20: "198.19.1.2:5201", 30: "198.19.1.2:50001", 31: "198.19.2.2:51000", 32: "invalid AddrPort"}
	for cookie, peer := range peerOf() {
		if peer != want[cookie] {
			t.Errorf("with h2's list: peer of %d is %s, want %s", cookie, peer, want[cookie])
		}
	}
	for _, conn := range c.Connections() {
		if conn.Cookie == 31 && (conn.PeerContainer != "" || conn.Role != control.RoleServer || conn.PeerHost.String() != "198.18.0.2:51000") {
			t.Errorf("joined connection %+v", conn)
		}
	}

	c.DropRemoteClients(h2, 6) // an older connection ends: the list stays
	if got := peerOf(); got[31] != want[31] {
		t.Errorf("an older connection's end dropped the list: peer of 31 is %s", got[31])
	}
	c.DropRemoteClients(h2, 7)
	if got := peerOf(); got[31] != "invalid AddrPort" || got[30] != want[30] {
		t.Errorf("after the list's connection ended: %v", got)
	}
}
