package supervise

import (
	"net/netip"
	"sync"
	"time"
)

// A listener the directory lists as pending (its app is not seen
// accepting yet) may be about to be armed: the app told its client of the
// port just before it accepts, or it is still starting. As the shim does
// (preload/connect.c), a blocking connect waits up to pendingWait for it,
// a non-blocking one pendingWaitNB, looking every millisecond; then the
// overlay. A listener that stayed pending is skipped for pendingSkip:
// connects to it go straight over the overlay.
const (
	pendingWait   = 250 * time.Millisecond
	pendingWaitNB = 20 * time.Millisecond
	pendingSkip   = time.Second
	pendingLook   = time.Millisecond
)

// skipTable remembers the pending listeners not waited for again.
type skipTable struct {
	mu    sync.Mutex
	until map[netip.AddrPort]time.Time
}

func (t *skipTable) skipped(dst netip.AddrPort) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	until, ok := t.until[dst]
	if ok && time.Now().After(until) {
		delete(t.until, dst)
		return false
	}
	return ok
}

func (t *skipTable) skip(dst netip.AddrPort) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.until == nil || len(t.until) > 1024 {
		t.until = map[netip.AddrPort]time.Time{}
	}
	t.until[dst] = time.Now().Add(pendingSkip)
}

// waitArmed waits, for the program's socket app, until the pending
// listener dst is armed, and returns its host listener; false: the
// overlay. A listener of the supervisor's own programs is armed at once:
// they connect to it, so they will accept (why else connect?).
func (s *Supervisor) waitArmed(app int, dst netip.AddrPort) (netip.AddrPort, bool) {
	if s.skips.skipped(dst) {
		return netip.AddrPort{}, false
	}
	s.servers.armOwn(dst)
	wait := pendingWait
	if nb, err := nonblocking(app); err != nil || nb {
		wait = pendingWaitNB
	}
	for deadline := time.Now().Add(wait); ; time.Sleep(pendingLook) {
		host, st := s.dir.find(dst)
		switch {
		case st == dirArmed:
			return host, true
		case st == dirNone || time.Now().After(deadline):
			if st == dirPending {
				s.logf("%v is not accepted from yet; over the overlay", dst)
				s.skips.skip(dst)
			}
			return netip.AddrPort{}, false
		}
	}
}

// armOwn arms the supervisor's own pending listener published as dst.
func (l *listeners) armOwn(dst netip.AddrPort) {
	l.mu.Lock()
	var own *merged
	for _, m := range l.byCookie {
		if m.overlay == dst {
			own = m
			break
		}
	}
	l.mu.Unlock()
	if own != nil {
		l.arm(own)
	}
}
