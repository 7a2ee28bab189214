package census

import (
	"net/netip"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/router/sockdiag"
)

var (
	h1Listener = netip.MustParseAddrPort("198.18.0.1:40001") // h1-c1's 198.19.1.2:5201
	h2Listener = netip.MustParseAddrPort("198.18.0.2:40002") // h2-c1's 198.19.2.2:8080
)

func testDirectory() DirectoryView {
	l := Listener{Container: "h1-c1", Overlay: netip.MustParseAddrPort("198.19.1.2:5201")}
	return DirectoryView{
		LocalByHost: map[netip.AddrPort]Listener{h1Listener: l},
		OverlayOf: map[netip.AddrPort]netip.AddrPort{
			h1Listener: l.Overlay,
			h2Listener: netip.MustParseAddrPort("198.19.2.2:8080"),
		},
		ContainerAddr: map[string]netip.Addr{"h1-c1": netip.MustParseAddr("198.19.1.2"), "h1-c2": netip.MustParseAddr("198.19.1.3")},
	}
}

func sock(cookie uint64, state uint8, local, remote string, in, out uint64) Socket {
	return Socket{Cookie: cookie, State: state, Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), BytesIn: in, BytesOut: out, RTT: 150 * time.Microsecond}
}

func TestCensusFindsClientsAndServers(t *testing.T) {
	c := New()
	t0 := time.Unix(1700000000, 0)
	c.HandedOut("h1-c2", []uint64{10, 11}, t0)
	c.HandedOut("h1-c1", []uint64{20}, t0)
	sockets := []Socket{
		sock(10, sockdiag.Established, "198.18.0.1:50000", "198.18.0.2:40002", 100, 2000), // h1-c2 → h2-c1
		sock(20, sockdiag.Established, "198.18.0.1:50001", "198.18.0.1:40001", 10, 20),    // h1-c1 → itself on this host
		sock(30, sockdiag.Established, "198.18.0.1:40001", "198.18.0.1:50001", 20, 10),    // its server side
		sock(31, sockdiag.Established, "198.18.0.1:40001", "198.18.0.2:51000", 5000, 0),   // a client on h2
		sock(40, sockdiag.Established, "198.18.0.1:7946", "198.18.0.2:33333", 1, 1),       // not ours
		sock(41, sockdiag.Listen, "198.18.0.1:40001", "0.0.0.0:0", 0, 0),
	}
	c.Update(t0, sockets, testDirectory())
	got := map[uint64]control.Connection{}
	for _, conn := range c.Connections() {
		got[conn.Cookie] = conn
	}
	if len(got) != 4 {
		t.Fatalf("census found %d connections, want 4: %+v", len(got), got)
	}
	want := map[uint64]struct{ container, role, local, peer, peerContainer string }{
		10: {"h1-c2", control.RoleClient, "198.19.1.3:50000", "198.19.2.2:8080", ""},
		20: {"h1-c1", control.RoleClient, "198.19.1.2:50001", "198.19.1.2:5201", "h1-c1"},
		30: {"h1-c1", control.RoleServer, "198.19.1.2:5201", "198.19.1.2:50001", "h1-c1"},
		31: {"h1-c1", control.RoleServer, "198.19.1.2:5201", "invalid AddrPort", ""},
	}
	for cookie, w := range want {
		g := got[cookie]
		if g.Container != w.container || g.Role != w.role || g.Local.String() != w.local || g.Peer.String() != w.peer || g.PeerContainer != w.peerContainer {
			t.Errorf("cookie %d: %s %s %s → %s (%s), want %+v", cookie, g.Container, g.Role, g.Local, g.Peer, g.PeerContainer, w)
		}
	}
	if got[31].PeerKnown() || got[31].PeerHost.String() != "198.18.0.2:51000" {
		t.Errorf("a remote client's overlay address is not known here; got peer %v host %v", got[31].Peer, got[31].PeerHost)
	}

	// Next sweep: counters grow, rates follow, ages stay.
	sockets[0].BytesOut += 1 << 20
	c.Update(t0.Add(500*time.Millisecond), sockets, testDirectory())
	for _, conn := range c.Connections() {
		if conn.Cookie == 10 {
			if conn.RateOut != 2<<20 || !conn.Since.Equal(t0) || conn.RTT != 150*time.Microsecond {
				t.Errorf("after a sweep: rate out %v since %v rtt %v, want %d B/s since t0", conn.RateOut, conn.Since, conn.RTT, 2<<20)
			}
		}
	}
}

// TestCensusTracksPastTheOldBound: the census forgets pool sockets that
// no longer exist (the witness no longer lists them), however many were
// handed out before: after 70,000 short connections it still tracks, and
// lists, the next client connection. It used to stop tracking new pool
// sockets at 65,536 for ten minutes.
func TestCensusTracksPastTheOldBound(t *testing.T) {
	c := New()
	t0 := time.Unix(1700000000, 0)
	for batch := range 70000 / 64 {
		cookies := make([]uint64, 64)
		for i := range cookies {
			cookies[i] = uint64(1000 + batch*64 + i)
		}
		now := t0.Add(time.Duration(batch) * time.Millisecond)
		c.HandedOut("h1-c2", cookies, now)
		// Connected and closed between two sweeps: never listed by
		// sock_diag, gone from the witness at the next sweep.
		if batch%100 == 99 {
			c.Update(now, nil, testDirectory())
			c.ForgetPool("h1-c2", map[uint64]bool{}, now.Add(time.Millisecond))
		}
	}
	later := t0.Add(time.Minute)
	c.ForgetPool("h1-c2", map[uint64]bool{}, later)
	c.HandedOut("h1-c2", []uint64{7}, later)
	// A socket handed out after the witness was read is not forgotten.
	c.ForgetPool("h1-c2", map[uint64]bool{}, later.Add(-time.Millisecond))
	c.Update(later.Add(time.Second), []Socket{sock(7, sockdiag.Established, "198.18.0.1:50000", "198.18.0.2:40002", 1, 1)}, testDirectory())
	conns := c.Connections()
	if len(conns) != 1 || conns[0].Cookie != 7 || conns[0].Container != "h1-c2" || conns[0].Role != control.RoleClient {
		t.Errorf("after 70,000 pool sockets came and went, the next client connection is listed as %+v", conns)
	}
	if len(c.pool) != 1 {
		t.Errorf("the pool table holds %d sockets, want the one that exists", len(c.pool))
	}
}

func TestShimStatsAddUp(t *testing.T) {
	s := NewShimStats()
	now := time.Unix(1700000000, 0)
	if v := s.View(now); v.Reports != 0 || len(v.SetupBuckets) != 0 {
		t.Fatalf("no STATS yet: %+v", v)
	}
	setups := make([]uint32, 30) // more buckets than the router keeps: folded into the last
	setups[6], setups[29] = 40, 2
	all := func(n uint64) uint64 { return n }
	s.Add(now, "h1-c1", protocol.Stats{Fallbacks: []uint32{1, 0, 0, 0, 3}, Setups: setups}, all)
	s.Add(now.Add(time.Second), "h1-c1", protocol.Stats{Fallbacks: []uint32{1}, Setups: setups[:7]}, all)
	v := s.View(now.Add(time.Second))
	if v.Reports != 2 || v.Fallbacks["router_unreachable"] != 2 || v.Fallbacks["pool_empty"] != 3 || v.TotalFallbacks() != 5 {
		t.Errorf("fallbacks %+v", v)
	}
	if v.SetupBuckets[6] != 80 || v.SetupBuckets[protocol.SetupBuckets-1] != 2 || v.Setups() != 82 {
		t.Errorf("setup buckets %v", v.SetupBuckets)
	}
	if v.SetupsPerSecond != 8.2 {
		t.Errorf("setups/s = %v, want 82 over 10 s", v.SetupsPerSecond)
	}
	if later := s.View(now.Add(time.Minute)); later.SetupsPerSecond != 0 {
		t.Errorf("a minute later setups/s = %v, want 0", later.SetupsPerSecond)
	}
}
