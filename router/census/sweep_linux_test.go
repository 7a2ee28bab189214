package census

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/sockdiag"
)

// fakeHost is the router as a sweep sees it, in memory.
type fakeHost struct {
	mu        sync.Mutex
	listening map[uint64]bool
	started   time.Time
	counted   int
}

func (h *fakeHost) DropGoneListeners(started time.Time, listening map[uint64]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started, h.listening = started, listening
}

func (h *fakeHost) DirectoryView() DirectoryView { return testDirectory() }

func (h *fakeHost) CountPools() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counted++
}

func diagSocket(cookie uint64, state uint8, local, remote string) sockdiag.Socket {
	return sockdiag.Socket{Cookie: cookie, State: state, Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), BytesReceived: 7, BytesAcked: 9}
}

// TestSweeperOnce: a sweep tells the router which host listeners still
// listen, fills the census from the dump, has the pools counted, and
// says when it last worked; a dump that fails changes nothing but the
// error it reports.
func TestSweeperOnce(t *testing.T) {
	c := New()
	c.HandedOut("h1-c2", []uint64{10}, time.Unix(1700000000, 0))
	host := &fakeHost{}
	s := NewSweeper(c, host, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.dump = func() ([]sockdiag.Socket, error) {
		return []sockdiag.Socket{
			diagSocket(10, sockdiag.Established, "198.18.0.1:50000", "198.18.0.2:40002"),
			diagSocket(41, sockdiag.Listen, "198.18.0.1:40001", "0.0.0.0:0"),
		}, nil
	}
	before := time.Now()
	s.Once()
	last, err := s.Status()
	if err != nil || last.Before(before) {
		t.Fatalf("status after a sweep: %v, %v", last, err)
	}
	if !host.listening[41] || host.listening[10] || !host.started.Equal(last) || host.counted != 1 {
		t.Errorf("the host was told listening %v at %v (sweep at %v), pools counted %d times", host.listening, host.started, last, host.counted)
	}
	conns := c.Connections()
	if len(conns) != 1 || conns[0].Cookie != 10 || conns[0].Role != control.RoleClient || conns[0].BytesIn != 7 || conns[0].BytesOut != 9 {
		t.Errorf("connections after the sweep: %+v", conns)
	}

	s.dump = func() ([]sockdiag.Socket, error) { return nil, errors.New("netlink: no") }
	s.nextFull = time.Time{} // a full dump is due
	s.Once()
	if again, err := s.Status(); err == nil || !again.Equal(last) {
		t.Errorf("status after a failed sweep: %v, %v; want the error and the last good sweep", again, err)
	}
	if host.counted != 1 || len(c.Connections()) != 1 {
		t.Error("a failed sweep changed the census or counted the pools")
	}
}

// TestSweeperRunStops: Run sweeps every Interval and returns when ctx
// ends.
func TestSweeperRunStops(t *testing.T) {
	host := &fakeHost{}
	s := NewSweeper(New(), host, slog.New(slog.NewTextHandler(io.Discard, nil)))
	swept := make(chan struct{}, 1)
	s.dump = func() ([]sockdiag.Socket, error) {
		select {
		case swept <- struct{}{}:
		default:
		}
		return nil, nil
	}
	s.dumpListeners = s.dump
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-swept:
	case <-time.After(Interval + 10*time.Second):
		t.Fatal("Run did not sweep")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
}

// TestSweeperListsConnectionsWithinBudget: a full dump that took long
// (the kernel walked many TIME_WAIT sockets) is followed by listener-only
// dumps, which still drop gone listeners and count the pools but leave the
// census as it was, until connectionsBudget times its duration has
// passed; a quick full dump is repeated every Interval.
func TestSweeperListsConnectionsWithinBudget(t *testing.T) {
	c := New()
	c.HandedOut("h1-c2", []uint64{10}, time.Unix(1700000000, 0))
	host := &fakeHost{}
	s := NewSweeper(c, host, slog.New(slog.NewTextHandler(io.Discard, nil)))
	clock := time.Unix(1700000100, 0)
	s.now = func() time.Time { return clock }
	var full, listeners int
	took := 40 * time.Millisecond
	s.dump = func() ([]sockdiag.Socket, error) {
		full++
		clock = clock.Add(took)
		return []sockdiag.Socket{
			diagSocket(10, sockdiag.Established, "198.18.0.1:50000", "198.18.0.2:40002"),
			diagSocket(41, sockdiag.Listen, "198.18.0.1:40001", "0.0.0.0:0"),
		}, nil
	}
	s.dumpListeners = func() ([]sockdiag.Socket, error) {
		listeners++
		return []sockdiag.Socket{diagSocket(42, sockdiag.Listen, "198.18.0.1:40003", "0.0.0.0:0")}, nil
	}
	s.Once()
	if full != 1 || len(c.Connections()) != 1 {
		t.Fatalf("first sweep: %d full dumps, connections %+v", full, c.Connections())
	}
	budget := connectionsBudget * took // 4 s
	for at := Interval; at < budget; at += Interval {
		clock = time.Unix(1700000100, 0).Add(at)
		s.Once()
	}
	if full != 1 || listeners != 3 {
		t.Errorf("within the budget of a %v dump: %d full dumps, %d listener dumps; want 1 and 3", took, full, listeners)
	}
	if !host.listening[42] || host.listening[41] || host.counted != 4 {
		t.Errorf("listener dumps told the router listening %v, pools counted %d times; want 42 only, 4", host.listening, host.counted)
	}
	if conns := c.Connections(); len(conns) != 1 || conns[0].Cookie != 10 {
		t.Errorf("a listener dump changed the connections: %+v", conns)
	}
	clock = time.Unix(1700000100, 0).Add(budget)
	took = time.Millisecond
	s.Once()
	clock = clock.Add(Interval)
	s.Once()
	if full != 3 {
		t.Errorf("after the budget, quick dumps: %d full dumps, want 3 (one per Interval)", full)
	}

	// A listing that took very long (a machine swamped): the next one
	// still comes within maxListingGap.
	took = time.Second
	clock = clock.Add(Interval)
	s.Once()
	clock = clock.Add(maxListingGap - took)
	s.Once()
	if full != 5 {
		t.Errorf("a listing that took %v: %d full dumps, want the next within %v (5)", took, full, maxListingGap)
	}
}
