package control

import "time"

// Setups is the number of accelerated setups in the histogram.
func (s ShimStats) Setups() uint64 {
	var n uint64
	for _, c := range s.SetupBuckets {
		n += c
	}
	return n
}

// TotalFallbacks is the number of connects that fell back, all reasons.
func (s ShimStats) TotalFallbacks() uint64 {
	var n uint64
	for _, c := range s.Fallbacks {
		n += c
	}
	return n
}

// SetupQuantile returns an upper bound of the q-quantile (0 < q ≤ 1) of
// setup times: the upper edge of the bucket that holds it. ok is false
// without data, or when the quantile is in the open-ended last bucket
// (then the returned bound is its lower edge).
func (s ShimStats) SetupQuantile(q float64) (bound time.Duration, ok bool) {
	total := s.Setups()
	if total == 0 {
		return 0, false
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range s.SetupBuckets {
		seen += c
		if seen >= rank {
			if i > 0 && i == len(s.SetupBuckets)-1 {
				return time.Duration(1<<(i-1)) * time.Microsecond, false
			}
			return time.Duration(1<<i) * time.Microsecond, true
		}
	}
	return 0, false
}
