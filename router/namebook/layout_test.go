package namebook

import "testing"

// TestBucket pins the bucket function, which preload/handoff.c computes
// too (docs/protocol.md §6): these values came from both.
func TestBucket(t *testing.T) {
	for cookie, want := range map[uint64]uint32{1: 3248, 0x1000: 5580, 12345678901: 3796} {
		if got := Bucket(cookie, Slots); got != want {
			t.Errorf("Bucket(%d) = %d, want %d", cookie, got, want)
		}
	}
}

// TestBucketSpreads: sequential cookies (the kernel hands them out in
// order) spread over the buckets: 8192 of them fill none of the 2048
// buckets with more than 16 (4 on average, as random ones).
func TestBucketSpreads(t *testing.T) {
	load := map[uint32]int{}
	for c := uint64(1000); c < 1000+Slots; c++ {
		load[Bucket(c, Slots)]++
	}
	for b, n := range load {
		if b%Ways != 0 || b >= Slots || n > 16 {
			t.Fatalf("bucket %d holds %d of %d sequential cookies", b, n, Slots)
		}
	}
}
