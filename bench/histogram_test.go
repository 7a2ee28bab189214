package bench

import (
	"math"
	"testing"
)

func TestHistogramBucketsAreContiguousAndPrecise(t *testing.T) {
	previous := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1e6, 123456789, 1 << 42} {
		i := histIndex(v)
		if i < previous {
			t.Errorf("index(%d) = %d, below the index of a smaller value (%d)", v, i, previous)
		}
		previous = i
		mid := histValue(i)
		if diff := math.Abs(float64(mid) - float64(v)); diff > float64(v)/128+0.5 {
			t.Errorf("value %d lands in bucket %d of midpoint %d: off by %.0f, more than 1/128", v, i, mid, diff)
		}
	}
	// Every bucket's midpoint maps back to it.
	for i := 0; i < histBuckets; i++ {
		if got := histIndex(histValue(i)); got != i {
			t.Fatalf("bucket %d: midpoint %d maps to bucket %d", i, histValue(i), got)
		}
	}
	if got := histIndex(1 << 60); got != histBuckets-1 {
		t.Errorf("huge value in bucket %d, want the last (%d)", got, histBuckets-1)
	}
}

func TestHistogramPercentiles(t *testing.T) {
	h := newHistogram()
	if h.percentile(50) != 0 {
		t.Error("an empty histogram has a median")
	}
	for v := uint64(1); v <= 1000; v++ {
		h.add(v * 1000) // 1 us .. 1 ms
	}
	for pct, want := range map[float64]float64{50: 500e3, 90: 900e3, 99: 990e3, 99.9: 999e3, 100: 1000e3} {
		got := float64(h.percentile(pct))
		if math.Abs(got-want) > want/128 {
			t.Errorf("p%v = %v, want %v within 1/128", pct, got, want)
		}
	}
	if h.max != 1e6 || h.count != 1000 || math.Abs(h.mean()-500500) > 1e-6 {
		t.Errorf("max %d count %d mean %v", h.max, h.count, h.mean())
	}
	// Never above the largest value, even when its bucket's midpoint is.
	one := newHistogram()
	one.add(129)
	if got := one.percentile(99); got != 129 {
		t.Errorf("p99 of {129} = %d", got)
	}
}
