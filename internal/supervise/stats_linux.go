package supervise

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/slimnet/slim/router/protocol"
)

// What the supervisor tells the router about the program (STATS,
// docs/protocol.md §1), as the shim does for a preloaded one: connects to
// overlay destinations that stayed on the overlay, by reason, and a log2
// histogram of the time the supervisor took to accelerate a connect (from
// the trapped call to its answer). Counts leave the counters only with a
// STATS that was sent; one goes out at most once a second while there is
// something to report, and what is left as the supervision ends.

// statsInterval is the most often a STATS goes out.
const statsInterval = time.Second

// stats counts what the next STATS reports.
type stats struct {
	fallbacks [protocol.FallbackReasons]atomic.Uint32
	setups    [protocol.SetupBuckets]atomic.Uint32
	sendMu    sync.Mutex // one STATS at a time
	stop      chan struct{}
	stopped   chan struct{}
}

// fallback counts a connect to an overlay destination left on the overlay.
func (st *stats) fallback(reason protocol.FallbackReason) {
	if reason < 0 || reason >= protocol.FallbackReasons {
		reason = protocol.FallbackOther
	}
	st.fallbacks[reason].Add(1)
}

// setup counts an accelerated connect that took d.
func (st *stats) setup(d time.Duration) {
	st.setups[setupBucket(d)].Add(1)
}

// setupBucket is the histogram bucket of a setup time: bucket i counts
// setups shorter than 2^i µs, the last is open-ended.
func setupBucket(d time.Duration) int {
	us := d.Microseconds()
	b := 0
	for b < protocol.SetupBuckets-1 && us >= int64(1)<<b {
		b++
	}
	return b
}

// take empties the counters into a STATS; false if nothing was counted.
func (st *stats) take() (protocol.Stats, bool) {
	s := protocol.Stats{Fallbacks: make([]uint32, len(st.fallbacks)), Setups: make([]uint32, len(st.setups))}
	var any uint32
	for i := range st.fallbacks {
		s.Fallbacks[i] = st.fallbacks[i].Swap(0)
		any |= s.Fallbacks[i]
	}
	for i := range st.setups {
		s.Setups[i] = st.setups[i].Swap(0)
		any |= s.Setups[i]
	}
	return s, any != 0
}

// putBack returns the counts of a STATS that could not be sent.
func (st *stats) putBack(s protocol.Stats) {
	for i, n := range s.Fallbacks {
		st.fallbacks[i].Add(n)
	}
	for i, n := range s.Setups {
		st.setups[i].Add(n)
	}
}

// flush sends what was counted, if anything, with send; what could not
// be sent waits for the next flush.
func (st *stats) flush(send func(payload []byte) error) {
	st.sendMu.Lock()
	defer st.sendMu.Unlock()
	s, any := st.take()
	if !any {
		return
	}
	if err := send(s.Encode()); err != nil {
		st.putBack(s)
	}
}

// run flushes every statsInterval until close.
func (st *stats) run(send func(payload []byte) error) {
	st.stop, st.stopped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(st.stopped)
		tick := time.NewTicker(statsInterval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				st.flush(send)
			case <-st.stop:
				return
			}
		}
	}()
}

// close stops the periodic flushes and sends what is left.
func (st *stats) close(send func(payload []byte) error) {
	if st.stop != nil {
		close(st.stop)
		<-st.stopped
	}
	st.flush(send)
}
