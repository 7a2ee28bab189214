package census

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/protocol"
)

// setupRateWindow is the window of the setups-per-second rate.
const setupRateWindow = 10 * time.Second

// What a shim reports is its word, not a kernel fact: any process in a
// container can send STATS. So reports are bounded and attributed:
//   - a report with a count above MaxReportedCount is refused whole;
//   - setups are credited at most one per pool socket the container was
//     handed (every accelerated connect takes one);
//   - fallbacks are credited at most at FallbackRate per second per
//     container, with a burst of FallbackBurst (what a shim gathered while
//     the router was away arrives at once);
//   - what is left out is counted as discarded, and each container's
//     credited counts are shown apart (control.Container).
const (
	MaxReportedCount = 1 << 22
	FallbackRate     = 1 << 18
	FallbackBurst    = 1 << 22
)

// ShimStats adds up the STATS messages of every shim on this host.
type ShimStats struct {
	mu        sync.Mutex
	reports   uint64
	refused   uint64 // reports refused whole
	discarded uint64 // counts of accepted reports left out
	last      time.Time
	fallbacks map[string]uint64
	setups    [protocol.SetupBuckets]uint64
	// perSecond holds setups by the second they were reported in, for the
	// rate; indexed by unix second modulo its length.
	perSecond [int(setupRateWindow / time.Second)]struct {
		second int64
		setups uint64
	}
	containers map[string]*containerReports
}

// containerReports is what one container's shims were credited with.
type containerReports struct {
	setups, fallbacks uint64
	fallbackTokens    float64
	refilled          time.Time
}

// NewShimStats returns empty stats.
func NewShimStats() *ShimStats {
	return &ShimStats{fallbacks: map[string]uint64{}, containers: map[string]*containerReports{}}
}

// Refuse counts a report refused before it was read (its caller is no
// registered container).
func (s *ShimStats) Refuse() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused++
}

// Add records one STATS message of a container received at now. setupAllowance
// credits up to the setups asked for and returns how many it credited.
func (s *ShimStats) Add(now time.Time, container string, st protocol.Stats, setupAllowance func(uint64) uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := checkReport(st); err != nil {
		s.refused++
		return err
	}
	s.reports++
	s.last = now
	cr := s.containers[container]
	if cr == nil {
		cr = &containerReports{fallbackTokens: FallbackBurst, refilled: now}
		s.containers[container] = cr
	}
	cr.fallbacks = saturatingAdd(cr.fallbacks, s.addFallbacks(cr.takeFallbacks(now, sum(st.Fallbacks)), st.Fallbacks))
	setups := s.addSetups(setupAllowance(sum(st.Setups)), st.Setups)
	cr.setups = saturatingAdd(cr.setups, setups)
	slot := &s.perSecond[now.Unix()%int64(len(s.perSecond))]
	if slot.second != now.Unix() {
		slot.second, slot.setups = now.Unix(), 0
	}
	slot.setups += setups
	return nil
}

// checkReport refuses a report with a count no shim can have gathered.
func checkReport(st protocol.Stats) error {
	for _, counts := range [][]uint32{st.Fallbacks, st.Setups} {
		for _, n := range counts {
			if n > MaxReportedCount {
				return fmt.Errorf("STATS count %d is beyond any shim's (at most %d)", n, MaxReportedCount)
			}
		}
	}
	return nil
}

// takeFallbacks is how many of n fallbacks the container's rate allows.
func (cr *containerReports) takeFallbacks(now time.Time, n uint64) uint64 {
	cr.fallbackTokens = min(FallbackBurst, cr.fallbackTokens+now.Sub(cr.refilled).Seconds()*FallbackRate)
	cr.refilled = now
	take := min(float64(n), math.Floor(max(cr.fallbackTokens, 0)))
	cr.fallbackTokens -= take
	return uint64(take)
}

// addFallbacks adds up to allowed of the counts, by reason in order, and
// counts the rest as discarded; it returns how many it added.
func (s *ShimStats) addFallbacks(allowed uint64, counts []uint32) uint64 {
	var added uint64
	for reason, n := range counts {
		take := min(uint64(n), allowed-added)
		if take > 0 {
			name := protocol.FallbackReason(reason).String()
			s.fallbacks[name] = saturatingAdd(s.fallbacks[name], take)
		}
		added += take
		s.discarded = saturatingAdd(s.discarded, uint64(n)-take)
	}
	return added
}

// addSetups adds up to allowed of the histogram's counts, from the
// fastest bucket up, and counts the rest as discarded; it returns how
// many it added.
func (s *ShimStats) addSetups(allowed uint64, counts []uint32) uint64 {
	var added uint64
	for i, n := range counts {
		take := min(uint64(n), allowed-added)
		bucket := &s.setups[min(i, len(s.setups)-1)]
		*bucket = saturatingAdd(*bucket, take)
		added += take
		s.discarded = saturatingAdd(s.discarded, uint64(n)-take)
	}
	return added
}

func sum(counts []uint32) uint64 {
	var n uint64
	for _, c := range counts {
		n += uint64(c)
	}
	return n
}

func saturatingAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// View is the control API's picture of the stats at now.
func (s *ShimStats) View(now time.Time) control.ShimStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := control.ShimStats{Reports: s.reports, Refused: s.refused, Discarded: s.discarded, LastReport: s.last, Fallbacks: map[string]uint64{}}
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

// ContainerView is what a container's shims were credited with.
func (s *ShimStats) ContainerView(container string) (setups, fallbacks uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cr := s.containers[container]; cr != nil {
		return cr.setups, cr.fallbacks
	}
	return 0, 0
}
