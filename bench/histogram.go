package bench

import (
	"math"
	"math/bits"
)

// histogram is a log-linear histogram of latencies in nanoseconds, the
// same as slim-loadgen's (bench/loadgen/hist.c) and the Kafka stand-in's:
// values below histExact have a bucket each; above, every power of two is
// cut into histHalf buckets, so a bucket's midpoint is within 1/128 of any
// value in it.
type histogram struct {
	buckets []uint64
	count   uint64
	max     uint64
	sum     float64
}

const (
	histSubBits = 7
	histExact   = 1 << histSubBits
	histHalf    = histExact / 2
	histMaxBit  = 42
	histBuckets = histExact + (histMaxBit-histSubBits+1)*histHalf
)

func newHistogram() *histogram { return &histogram{buckets: make([]uint64, histBuckets)} }

func histIndex(v uint64) int {
	if v < histExact {
		return int(v)
	}
	msb := 63 - bits.LeadingZeros64(v)
	if msb > histMaxBit {
		return histBuckets - 1
	}
	shift := msb - (histSubBits - 1)
	return histExact + (msb-histSubBits)*histHalf + int(v>>shift) - histHalf
}

// histValue is the midpoint of a bucket.
func histValue(index int) uint64 {
	if index < histExact {
		return uint64(index)
	}
	above := index - histExact
	msb := histSubBits + above/histHalf
	top := uint64(histHalf + above%histHalf)
	shift := msb - (histSubBits - 1)
	return top<<shift + (uint64(1)<<shift)/2
}

func (h *histogram) add(v uint64) {
	h.buckets[histIndex(v)]++
	h.count++
	h.sum += float64(v)
	h.max = max(h.max, v)
}

// percentile is the value at or below which pct percent of the values
// lie (to the bucket's precision, never above the maximum); 0 if empty.
func (h *histogram) percentile(pct float64) uint64 {
	if h.count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(pct / 100 * float64(h.count)))
	rank = min(max(rank, 1), h.count)
	var seen uint64
	for i, n := range h.buckets {
		seen += n
		if seen >= rank {
			return min(histValue(i), h.max)
		}
	}
	return h.max
}

func (h *histogram) mean() float64 {
	if h.count == 0 {
		return 0
	}
	return h.sum / float64(h.count)
}
