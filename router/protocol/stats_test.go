package protocol

import (
	"errors"
	"slices"
	"testing"
)

func TestStatsRoundTrip(t *testing.T) {
	s := Stats{Fallbacks: []uint32{1, 2, 0, 0, 5, 0}, Setups: make([]uint32, SetupBuckets)}
	s.Setups[6] = 90
	got, err := DecodeStats(s.Encode())
	if err != nil || !slices.Equal(got.Fallbacks, s.Fallbacks) || !slices.Equal(got.Setups, s.Setups) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	msg, err := Decode(Message{Type: TypeStats, Payload: s.Encode()}.Encode())
	if err != nil || msg.Type != TypeStats {
		t.Fatalf("STATS message: %v %v", msg.Type, err)
	}
}

func TestStatsMalformed(t *testing.T) {
	good := Stats{Fallbacks: []uint32{1}, Setups: []uint32{2}}.Encode()
	for name, b := range map[string][]byte{
		"short":        good[:4],
		"truncated":    good[:len(good)-1],
		"long":         append(append([]byte{}, good...), 0),
		"reserved":     append(append([]byte{}, good[:4]...), append([]byte{1, 0, 0, 0}, good[8:]...)...),
		"many reasons": {0xff, 0, 0, 0, 0, 0, 0, 0},
	} {
		if _, err := DecodeStats(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want malformed", name, err)
		}
	}
	if FallbackPoolEmpty.String() != "pool_empty" || FallbackReason(40).String() != "reason_40" {
		t.Error("reason names")
	}
}
