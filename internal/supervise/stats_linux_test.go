package supervise

import (
	"errors"
	"testing"
	"time"

	"github.com/slimnet/slim/router/protocol"
)

func TestStatsFlushKeepsWhatWasNotSent(t *testing.T) {
	var st stats
	st.fallback(protocol.FallbackNoDirectoryEntry)
	st.fallback(protocol.FallbackReason(99)) // counted as other
	st.setup(3 * time.Microsecond)           // bucket 2: [2, 4) µs
	st.flush(func([]byte) error { return errors.New("router gone") })
	var got []protocol.Stats
	send := func(p []byte) error {
		s, err := protocol.DecodeStats(p)
		got = append(got, s)
		return err
	}
	st.flush(send)
	st.flush(send) // nothing left: nothing sent
	if len(got) != 1 {
		t.Fatalf("%d STATS sent, want 1", len(got))
	}
	s := got[0]
	if s.Fallbacks[protocol.FallbackNoDirectoryEntry] != 1 || s.Fallbacks[protocol.FallbackOther] != 1 || s.Setups[2] != 1 {
		t.Errorf("STATS %+v, want one no_directory_entry, one other, one setup in bucket 2", s)
	}
	if len(s.Setups) != protocol.SetupBuckets || len(s.Fallbacks) != int(protocol.FallbackReasons) {
		t.Errorf("STATS with %d buckets and %d reasons", len(s.Setups), len(s.Fallbacks))
	}
}

func TestSetupBucket(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 0, time.Microsecond: 1, 40 * time.Microsecond: 6, time.Hour: protocol.SetupBuckets - 1} {
		if got := setupBucket(d); got != want {
			t.Errorf("setupBucket(%v) = %d, want %d", d, got, want)
		}
	}
}
