package router

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/census"
	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/router/shimserver"
	"github.com/slimnet/slim/router/shimserver/shimtest"
)

// Hostile shims, root-free (shimtest_linux_test.go; the shim server's own
// defences are tested in package shimserver): what any process in
// a container can send on the router socket (docs/secure.md, "Tested:
// local denial of service and shim reports").

// poolRequest asks for n pool sockets.
func poolRequest(id uint32, n int) []byte {
	return protocol.Message{Type: protocol.TypePool, ID: id, Payload: protocol.Uint32Payload(uint32(n))}.Encode()
}

// heldPoolSockets is what the control API says the container holds,
// after the sweep's count.
func heldPoolSockets(t *testing.T, r *Router, name string) (held, quota int, refused uint64) {
	t.Helper()
	r.countPools()
	for _, c := range r.Snapshot().Containers {
		if c.Name == name {
			return c.PoolSockets, c.PoolQuota, c.PoolRefused
		}
	}
	t.Fatalf("no container %s in the snapshot", name)
	return 0, 0, 0
}

// TestPoolHoardingIsBounded: a process in a container (no shim) asks for
// pools of 64 on 20 connections and reads no reply, as fast as it can;
// then it reads them all. It never holds more host sockets than its
// quota; past it, POOL gets ERROR EDQUOT naming the quota; the control
// API shows the count and the quota; once it closes them it gets more.
func TestPoolHoardingIsBounded(t *testing.T) {
	const quota = 256
	r, _ := selfRouter(t, Limits{PoolSockets: quota})
	var conns []*shimtest.Shim
	for range 20 {
		conn, _ := shimPair(t, r)
		conns = append(conns, conn)
		for i := range 40 {
			conn.Send(poolRequest(uint32(i+1), protocol.MaxPool))
		}
	}
	var got []int
	var quotaErrors int
	for _, conn := range conns {
		for range 40 {
			reply, err := conn.Receive(10 * time.Second)
			if err != nil {
				t.Fatalf("reading a reply: %v", err)
			}
			got = append(got, reply.FDs...)
			if reply.Type == protocol.TypeError && reply.Errno == int32(unix.EDQUOT) && strings.Contains(reply.Text, "limits.pool_sockets") {
				quotaErrors++
			}
		}
	}
	t.Logf("20×40 POOL requests of 64: %d host sockets, %d refused for the quota", len(got), quotaErrors)
	if len(got) > quota || quotaErrors == 0 {
		t.Errorf("the container got %d host sockets (quota %d) and %d EDQUOT refusals", len(got), quota, quotaErrors)
	}
	held, shownQuota, refused := heldPoolSockets(t, r, "self")
	if held != len(got) || shownQuota != quota || refused != uint64(quotaErrors) {
		t.Errorf("control API: %d held of %d, %d refused; want %d of %d, %d", held, shownQuota, refused, len(got), quota, quotaErrors)
	}
	closeAll(got)
	if held, _, _ := heldPoolSockets(t, r, "self"); held != 0 {
		t.Errorf("after closing them all the container holds %d host sockets", held)
	}
	time.Sleep(poolRecountInterval)
	if reply := conns[0].Call(protocol.Message{Type: protocol.TypePool, ID: 99, Payload: protocol.Uint32Payload(8)}); reply.Type != protocol.TypePoolOK || len(reply.FDs) != 8 {
		t.Errorf("POOL after the sockets were closed: %+v", reply)
	}
}

// TestPoolReplyNeverRead: the sockets of a reply the router cannot send
// (the shim reads nothing until the router gives up on it) are closed,
// and so are those it queued once the shim is gone: the container holds
// nothing afterwards.
func TestPoolReplyNeverRead(t *testing.T) {
	r, _ := selfRouter(t, Limits{})
	conn, done := shimPair(t, r)
	go func() {
		for i := 0; ; i++ {
			if _, _, err := conn.WriteMsgUnix(poolRequest(uint32(i+1), protocol.MaxPool), nil, nil); err != nil {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(shimserver.ReplyTimeout + 20*time.Second):
		t.Fatal("the router still writes to a shim that reads nothing")
	}
	held, _, _ := heldPoolSockets(t, r, "self")
	t.Logf("the router gave up; %d host sockets wait in the unread replies", held)
	if held > DefaultPoolSockets {
		t.Errorf("%d host sockets in unread replies, beyond the quota %d", held, DefaultPoolSockets)
	}
	conn.Close()
	if held, _, _ := heldPoolSockets(t, r, "self"); held != 0 {
		t.Errorf("after the shim closed its end the container holds %d host sockets", held)
	}
}

// statsNote is a STATS message with the given counts.
func statsNote(fallbacks []uint32, setups []uint32) []byte {
	return protocol.Message{Type: protocol.TypeStats, ID: 1, Payload: protocol.Stats{Fallbacks: fallbacks, Setups: setups}.Encode()}.Encode()
}

// TestShimReportsBoundedAndAttributed: a process in a container sends
// STATS of its own making. Counts no shim can have gathered are refused;
// setups are credited at most one per pool socket the container was
// handed; fallbacks at most at the container's rate; what is credited is
// shown under the container, the rest as discarded. It used to be added
// up as sent (1e14 setups, "10 billion/s").
func TestShimReportsBoundedAndAttributed(t *testing.T) {
	r, _ := selfRouter(t, Limits{})
	conn, _ := shimPair(t, r)
	pool := conn.Call(protocol.Message{Type: protocol.TypePool, ID: 2, Payload: protocol.Uint32Payload(8)})
	if len(pool.FDs) != 8 {
		t.Fatalf("POOL: %+v", pool)
	}
	huge := ^uint32(0)
	setups := make([]uint32, protocol.SetupBuckets)
	setups[0] = census.MaxReportedCount
	for range 1000 {
		conn.Send(statsNote([]uint32{huge}, []uint32{huge}))                        // refused
		conn.Send(statsNote([]uint32{0, 0, 0, 0, census.MaxReportedCount}, setups)) // bounded
	}
	conn.Call(protocol.Message{Type: protocol.TypeHello, ID: 3}) // the notes are read
	snap := r.Snapshot()
	s := snap.Shims
	t.Logf("after 2000 forged reports: %d reports, %d refused, %d setups, %.1f/s, %d fallbacks, %d discarded",
		s.Reports, s.Refused, s.Setups(), s.SetupsPerSecond, s.TotalFallbacks(), s.Discarded)
	if s.Refused != 1000 || s.Reports != 1000 {
		t.Errorf("%d reports accepted, %d refused; want 1000 and 1000", s.Reports, s.Refused)
	}
	if s.Setups() > 8 || s.SetupsPerSecond > 8 {
		t.Errorf("%d setups (%.1f/s) credited to a container handed 8 pool sockets", s.Setups(), s.SetupsPerSecond)
	}
	if max := uint64(census.FallbackBurst + 60*census.FallbackRate); s.TotalFallbacks() > max {
		t.Errorf("%d fallbacks credited, beyond the container's burst and rate (%d)", s.TotalFallbacks(), max)
	}
	if s.Discarded < 1000*census.MaxReportedCount {
		t.Errorf("discarded %d, want what was left out", s.Discarded)
	}
	for _, c := range snap.Containers {
		if c.Name == "self" && (c.ShimSetups != s.Setups() || c.ShimFallbacks != s.TotalFallbacks()) {
			t.Errorf("container %s: %d setups, %d fallbacks; want the totals, all of them its own", c.Name, c.ShimSetups, c.ShimFallbacks)
		}
	}
}
