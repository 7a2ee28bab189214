package census

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/slimnet/slim/router/sockdiag"
)

// Interval is how often the sweep checks which host sockets the router
// handed out still exist, and counts their bytes for the control API.
const Interval = time.Second

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

	mu   sync.Mutex
	last time.Time // when the last sweep that worked started
	err  error     // of the last sweep
}

// NewSweeper returns a sweeper of the host namespace's sockets.
func NewSweeper(census *Census, host Host, log *slog.Logger) *Sweeper {
	return &Sweeper{census: census, host: host, log: log, dump: func() ([]sockdiag.Socket, error) {
		// TIME_WAIT, by far the most numerous on a busy host, is left
		// out by the kernel.
		return sockdiag.TCP(sockdiag.Live)
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
// with their cookies and tcp_info (bytes, RTT), drops the listeners whose
// host listener is gone and the connections that are gone.
func (s *Sweeper) Once() {
	started := time.Now()
	dump, err := s.dump()
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
	s.census.Update(started, sockets, s.host.DirectoryView())
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
