package router

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/router/shimserver/shimtest"
)

// Pool sockets made ahead (poolahead_linux.go), root-free: the router
// serves a shim in this process (shimtest_linux_test.go); the sockets,
// their witness and their count are the kernel's.

// askPool asks for n pool sockets and returns what came; a HELLO after
// it makes sure the work after the answer (the batch made ahead) is done.
func askPool(t *testing.T, shim *shimtest.Shim, id uint32, n int) []int {
	t.Helper()
	reply := shim.Call(protocol.Message{Type: protocol.TypePool, ID: id, Payload: protocol.Uint32Payload(uint32(n))})
	if reply.Type != protocol.TypePoolOK {
		t.Fatalf("POOL %d: %v errno %d %q", n, reply.Type, reply.Errno, reply.Text)
	}
	shim.Call(protocol.Message{Type: protocol.TypeHello, ID: id + 1000})
	return reply.FDs
}

// shelfCookies is the cookies of the sockets waiting on c's shelf.
func shelfCookies(c *container) []uint64 {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	var cookies []uint64
	for b := range c.pool.ahead.batches {
		cookies = append(cookies, b.cookies...)
	}
	slices.Sort(cookies)
	return cookies
}

func cookiesOf(t *testing.T, fds []int) []uint64 {
	t.Helper()
	var cookies []uint64
	for _, fd := range fds {
		cookie, err := socketCookie(fd)
		if err != nil {
			t.Fatal(err)
		}
		cookies = append(cookies, cookie)
	}
	slices.Sort(cookies)
	return cookies
}

// aliveAfterClosing closes fds and returns how many of the container's
// pool sockets still exist, as its witness says.
func aliveAfterClosing(t *testing.T, c *container, fds []int) int {
	t.Helper()
	closeAll(fds)
	alive, err := c.pool.count(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return len(alive)
}

// TestPoolAheadLifecycle: a connection's first POOL gets nothing made
// ahead; its second, soon after, gets its next batch made (as big as
// asked, counted against the quota: the control API shows it held); the
// third is answered with exactly those sockets, and the next batch is
// made; when the connection ends, the batch is closed and the container
// holds nothing once it closes what it got.
func TestPoolAheadLifecycle(t *testing.T) {
	r, c := selfRouter(t, Limits{})
	shim, done := shimPair(t, r)
	var got []int
	got = append(got, askPool(t, shim, 1, 4)...)
	if n := c.pool.aheadSockets(); n != 0 {
		t.Errorf("after a first POOL %d sockets were made ahead, want none", n)
	}
	got = append(got, askPool(t, shim, 2, 8)...)
	ahead := shelfCookies(c)
	if len(ahead) != 8 {
		t.Fatalf("after a second POOL of 8, %d sockets were made ahead, want 8", len(ahead))
	}
	if held, _, _ := heldPoolSockets(t, r, "self"); held != 12+8 {
		t.Errorf("the container holds %d host sockets, want the 12 handed out and the 8 made ahead", held)
	}
	third := askPool(t, shim, 3, 8)
	if !slices.Equal(cookiesOf(t, third), ahead) {
		t.Errorf("the third POOL got sockets %v, want those made ahead %v", cookiesOf(t, third), ahead)
	}
	got = append(got, third...)
	if n := c.pool.aheadSockets(); n != 8 {
		t.Errorf("after the third POOL %d sockets were made ahead, want 8", n)
	}
	shim.Close()
	<-done
	if n := c.pool.aheadSockets(); n != 0 {
		t.Errorf("the connection ended and %d sockets made ahead for it are left", n)
	}
	if n := aliveAfterClosing(t, c, got); n != 0 {
		t.Errorf("%d of the container's pool sockets exist after the connection ended and it closed what it got", n)
	}
	if held, _, _ := heldPoolSockets(t, r, "self"); held != 0 {
		t.Errorf("the container holds %d host sockets, want 0", held)
	}
}

// TestPoolAheadFamilies: an AF_INET6 POOL takes only AF_INET6 sockets
// made ahead, and a part of a batch that is bigger than asked stays made
// ahead.
func TestPoolAheadFamilies(t *testing.T) {
	r, c := selfRouter(t, Limits{})
	shim, _ := shimPair(t, r)
	ask6 := func(id uint32, n int) []int {
		reply := shim.Call(protocol.Message{Type: protocol.TypePool, ID: id, Payload: protocol.PoolPayload(uint32(n), protocol.PoolInet6)})
		if reply.Type != protocol.TypePoolOK || len(reply.FDs) != n {
			t.Fatalf("POOL %d AF_INET6: %v %q, %d fds", n, reply.Type, reply.Text, len(reply.FDs))
		}
		shim.Call(protocol.Message{Type: protocol.TypeHello, ID: id + 1000})
		return reply.FDs
	}
	askPool(t, shim, 1, 8)
	askPool(t, shim, 2, 8) // 8 AF_INET made ahead
	ask6(3, 2)
	for _, fd := range ask6(4, 2) { // 2 AF_INET6 made ahead
		if d, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); d != unix.AF_INET6 {
			t.Errorf("AF_INET6 POOL got a socket of family %d", d)
		}
	}
	for _, fd := range ask6(5, 2) {
		if d, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); d != unix.AF_INET6 {
			t.Errorf("AF_INET6 POOL after some were made ahead got a socket of family %d", d)
		}
	}
	if n := c.pool.aheadSockets(); n != 8+2 {
		t.Errorf("%d sockets made ahead, want 8 AF_INET and 2 AF_INET6", n)
	}
	for _, fd := range askPool(t, shim, 6, 3) {
		if d, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); d != unix.AF_INET {
			t.Errorf("AF_INET POOL got a socket of family %d", d)
		}
	}
	// 5 of the 8 left, topped up to the 3 asked last: 5 stay.
	if n := c.pool.aheadSockets(); n != 5+2 {
		t.Errorf("%d sockets made ahead after a POOL of 3 took from 8, want 5 AF_INET and 2 AF_INET6", n)
	}
}

// TestPoolAheadClosedWithItsContainer: unregistering the container
// closes the sockets made ahead for it at once (its connection stays
// open), the idle ones are closed by the sweep, and the router's stop
// closes them all: nothing made ahead outlives what it was for.
func TestPoolAheadClosedWithItsContainer(t *testing.T) {
	t.Run("unregistered", func(t *testing.T) {
		r, c := selfRouter(t, Limits{})
		shim, _ := shimPair(t, r)
		got := append(askPool(t, shim, 1, 8), askPool(t, shim, 2, 8)...)
		if n := c.pool.aheadSockets(); n != 8 {
			t.Fatalf("%d sockets made ahead, want 8", n)
		}
		r.unregister(c, "test")
		if n := aliveAfterClosing(t, c, got); n != 0 {
			t.Errorf("%d of the container's pool sockets exist after it was unregistered, want 0", n)
		}
	})
	t.Run("idle", func(t *testing.T) {
		r, c := selfRouter(t, Limits{})
		shim, _ := shimPair(t, r)
		got := append(askPool(t, shim, 1, 8), askPool(t, shim, 2, 8)...)
		r.countPools() // a sweep now closes nothing
		if n := c.pool.aheadSockets(); n != 8 {
			t.Fatalf("a sweep right after closed what was made ahead: %d left, want 8", n)
		}
		c.pool.dropIdleAhead(time.Now().Add(time.Second)) // as the sweep poolAheadIdle later
		if n := aliveAfterClosing(t, c, got); n != 0 {
			t.Errorf("%d of the container's pool sockets exist after the idle batch was closed, want 0", n)
		}
		// The next POOL is answered all the same.
		if fds := askPool(t, shim, 3, 8); len(fds) != 8 {
			t.Errorf("POOL after the batch was closed: %d sockets", len(fds))
		}
	})
	t.Run("router stops", func(t *testing.T) {
		r, c := selfRouter(t, Limits{})
		shim, _ := shimPair(t, r)
		got := append(askPool(t, shim, 1, 8), askPool(t, shim, 2, 8)...)
		r.closeAhead()
		if n := aliveAfterClosing(t, c, got); n != 0 {
			t.Errorf("%d of the container's pool sockets exist after the router's stop closed those made ahead, want 0", n)
		}
		askPool(t, shim, 3, 8)
		askPool(t, shim, 4, 8)
		if n := c.pool.aheadSockets(); n != 0 {
			t.Errorf("%d sockets made ahead after the router closed them", n)
		}
	})
}

// TestPoolAheadNeverCostsAPool: sockets made ahead for one connection
// never make the container's POOL on another fail for the quota: they are
// made only while it holds at most half its quota, and closed before a
// POOL would be refused.
func TestPoolAheadNeverCostsAPool(t *testing.T) {
	const quota = 64
	r, c := selfRouter(t, Limits{PoolSockets: quota})
	a, _ := shimPair(t, r)
	askPool(t, a, 1, 8)
	askPool(t, a, 2, 8)
	if n := c.pool.aheadSockets(); n != 8 {
		t.Fatalf("%d sockets made ahead, want 8", n)
	}
	b, _ := shimPair(t, r)
	if got := len(askPool(t, b, 1, 40)) + len(askPool(t, b, 2, 8)); got != 48 {
		t.Errorf("the other connection got %d of the 48 sockets left under the quota", got)
	}
	if n := c.pool.aheadSockets(); n != 0 {
		t.Errorf("%d sockets still made ahead with the container at its quota", n)
	}
	if _, _, refused := heldPoolSockets(t, r, "self"); refused != 0 {
		t.Errorf("%d POOL requests refused for the quota, want none", refused)
	}
}

// TestPoolAheadHoardingIsBounded: a process in a container asks POOL
// again and again on many connections, two at a time so that every one
// gets batches made ahead, and keeps all it gets: the host sockets that
// exist for it (those it holds and those the router made ahead for it)
// never exceed its quota.
func TestPoolAheadHoardingIsBounded(t *testing.T) {
	const quota = 256
	r, c := selfRouter(t, Limits{PoolSockets: quota})
	var got []int
	most := 0
	for range 16 {
		shim, _ := shimPair(t, r)
		for i := range 6 {
			reply := shim.Call(protocol.Message{Type: protocol.TypePool, ID: uint32(i + 1), Payload: protocol.Uint32Payload(16)})
			got = append(got, reply.FDs...)
			shim.Call(protocol.Message{Type: protocol.TypeHello, ID: 99})
			alive, err := c.pool.count(time.Now())
			if err != nil {
				t.Fatal(err)
			}
			most = max(most, len(alive))
		}
	}
	t.Logf("16 connections × 6 POOLs of 16: it got %d, at most %d existed, %d made ahead at the end", len(got), most, c.pool.aheadSockets())
	if most > quota {
		t.Errorf("%d host sockets existed for the container at once, beyond its quota %d", most, quota)
	}
	if len(got) > quota {
		t.Errorf("the container got %d host sockets, beyond its quota %d", len(got), quota)
	}
	closeAll(got)
}
