package census

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/slimnet/slim/router/sockdiag"
)

// Interval is how often the sweep checks which host listeners still
// exist and counts the pools, and, at most, how often it lists the
// connections and their bytes for the control API.
const Interval = time.Second

// connectionsBudget bounds the connection listing's CPU: the next one
// comes no sooner than connectionsBudget times as long after the start of
// the last as that one took (about 1% of a CPU). Listing connections walks
// the kernel's whole connection table, every network namespace's
// TIME_WAIT sockets included: a few ms on a quiet machine (every
// Interval), tens of ms on one that opens thousands of connections a
// second (then every few seconds). A listing is never more than
// maxListingGap old, whatever it costs.
const connectionsBudget = 100

// maxListingGap bounds the wait between two connection listings.
const maxListingGap = 10 * Interval

// Host is what a sweep needs of the router.
type Host interface {
	// DropGoneListeners drops the listeners added before started whose
	// host listener (by cookie) is not in listening: the server exited.
	DropGoneListeners(started time.Time, listening map[uint64]bool)
	// DirectoryView is the router's listeners, directory and containers
	// as they are now.
	DirectoryView() DirectoryView
	// CountPools counts each container's pool sockets, for its quota and
	// the control API, and has the census forget those that are gone
	// (ForgetPool).
	CountPools()
}

// Sweeper sweeps the host's sockets into a census.
type Sweeper struct {
	census *Census
	host   Host
	log    *slog.Logger
	// dump lists the host namespace's live TCP sockets (sock_diag; a
	// fake in tests).
	dump func() ([]sockdiag.Socket, error)
	// dumpListeners lists its listeners only: the kernel skips its
	// connection table, so this is cheap whatever the machine does.
	dumpListeners func() ([]sockdiag.Socket, error)
	// now is the clock (a fake in tests).
	now func() time.Time

	// nextFull is when the connections may be listed again.
	nextFull time.Time

	mu   sync.Mutex
	last time.Time // when the last sweep that worked started
	err  error     // of the last sweep
}

// NewSweeper returns a sweeper of the host namespace's sockets.
func NewSweeper(census *Census, host Host, log *slog.Logger) *Sweeper {
	return &Sweeper{census: census, host: host, log: log, now: time.Now,
		dump: func() ([]sockdiag.Socket, error) {
			// TIME_WAIT, by far the most numerous on a busy host, is
			// left out of the answer (not out of the kernel's walk).
			return sockdiag.TCP(sockdiag.Live)
		},
		dumpListeners: func() ([]sockdiag.Socket, error) {
			return sockdiag.TCP(1 << sockdiag.Listen)
		}}
}

// Run sweeps every Interval until ctx is done. A sweep in progress
// finishes first.
func (s *Sweeper) Run(ctx context.Context) error {
	ticker := time.NewTicker(Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			s.Once()
		}
	}
}

// Once sweeps: one sock_diag dump of the host namespace's live sockets,
// with their cookies and tcp_info (bytes, RTT), or of its listeners only
// while the last such dump's budget (connectionsBudget) runs; drops the
// listeners whose host listener is gone, and, after a full dump, the
// connections that are gone.
func (s *Sweeper) Once() {
	started := s.now()
	full := !started.Before(s.nextFull)
	dump := s.dumpListeners
	if full {
		dump = s.dump
	}
	sockets, err := dump()
	if full && err == nil {
		took := s.now().Sub(started)
		s.nextFull = started.Add(min(maxListingGap, max(Interval, connectionsBudget*took)))
	}
	s.mu.Lock()
	s.err = err
	if err == nil {
		s.last = started
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("listing host sockets", "err", err)
		return
	}
	s.apply(started, sockets, full)
}

// apply hands a dump to the router and, if it lists connections too, to
// the census.
func (s *Sweeper) apply(started time.Time, dump []sockdiag.Socket, full bool) {
	sockets := make([]Socket, 0, len(dump))
	listening := map[uint64]bool{}
	for _, d := range dump {
		sock := socketOf(d)
		sockets = append(sockets, sock)
		if sock.State == sockdiag.Listen {
			listening[sock.Cookie] = true
		}
	}
	s.host.DropGoneListeners(started, listening)
	if full {
		s.census.Update(started, sockets, s.host.DirectoryView())
	}
	s.host.CountPools()
}

// Status is when the last sweep that worked started, and the error of
// the last sweep (nil if it worked).
func (s *Sweeper) Status() (last time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.err
}

// socketOf converts one sock_diag answer.
func socketOf(d sockdiag.Socket) Socket {
	return Socket{
		Cookie: d.Cookie, State: d.State, Local: d.Local, Remote: d.Remote,
		BytesIn: d.BytesReceived, BytesOut: d.BytesAcked, RTT: d.RTT,
	}
}
