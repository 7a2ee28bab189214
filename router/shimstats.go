package router

import (
	"sync"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/protocol"
)

// setupRateWindow is the window of the setups-per-second rate.
const setupRateWindow = 10 * time.Second

// shimStats adds up the STATS messages of every shim on this host.
type shimStats struct {
	mu        sync.Mutex
	reports   uint64
	last      time.Time
	fallbacks map[string]uint64
	setups    [protocol.SetupBuckets]uint64
	// perSecond holds setups by the second they were reported in, for the
	// rate; indexed by unix second modulo its length.
	perSecond [int(setupRateWindow / time.Second)]struct {
		second int64
		setups uint64
	}
}

func newShimStats() *shimStats { return &shimStats{fallbacks: map[string]uint64{}} }

// add records one STATS message received at now.
func (s *shimStats) add(now time.Time, st protocol.Stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports++
	s.last = now
	for reason, n := range st.Fallbacks {
		if n > 0 {
			s.fallbacks[protocol.FallbackReason(reason).String()] += uint64(n)
		}
	}
	var setups uint64
	for i, n := range st.Setups {
		s.setups[min(i, len(s.setups)-1)] += uint64(n)
		setups += uint64(n)
	}
	slot := &s.perSecond[now.Unix()%int64(len(s.perSecond))]
	if slot.second != now.Unix() {
		slot.second, slot.setups = now.Unix(), 0
	}
	slot.setups += setups
}

// view is the control API's picture of the stats at now.
func (s *shimStats) view(now time.Time) control.ShimStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := control.ShimStats{Reports: s.reports, LastReport: s.last, Fallbacks: map[string]uint64{}}
	for reason, n := range s.fallbacks {
		v.Fallbacks[reason] = n
	}
	if s.reports > 0 {
		v.SetupBuckets = append([]uint64(nil), s.setups[:]...)
	}
	var recent uint64
	for _, slot := range s.perSecond {
		if age := now.Unix() - slot.second; age >= 0 && age < int64(len(s.perSecond)) {
			recent += slot.setups
		}
	}
	v.SetupsPerSecond = float64(recent) / setupRateWindow.Seconds()
	return v
}
