package protocol

import (
	"encoding/binary"
	"fmt"
)

// FallbackReason says why a shim sent a connect over the overlay. The
// numbers index the fallback counts of a STATS message.
type FallbackReason int

// Fallback reasons (docs/protocol.md §1, STATS).
const (
	FallbackRouterUnreachable   FallbackReason = iota // no router, or it did not answer in time
	FallbackNoDirectoryEntry                          // no accelerated listener for the destination
	FallbackBoundElsewhere                            // the app bound another address, or the host port is taken
	FallbackOptionNotReplayable                       // a socket option that cannot be copied to a host socket
	FallbackPoolEmpty                                 // no pool socket and the refill failed
	FallbackOther
	FallbackIPv6    // an IPv6 destination, or an IPV6_V6ONLY socket: not carried by IPv4 host sockets
	FallbackReasons // the number of reasons
)

var fallbackNames = [...]string{
	FallbackRouterUnreachable:   "router_unreachable",
	FallbackNoDirectoryEntry:    "no_directory_entry",
	FallbackBoundElsewhere:      "bound_elsewhere",
	FallbackOptionNotReplayable: "option_not_replayable",
	FallbackPoolEmpty:           "pool_empty",
	FallbackOther:               "other",
	FallbackIPv6:                "ipv6",
}

func (r FallbackReason) String() string {
	if r >= 0 && r < FallbackReasons {
		return fallbackNames[r]
	}
	return fmt.Sprintf("reason_%d", int(r))
}

// Limits of a STATS payload.
const (
	MaxStatsReasons = 32
	MaxStatsBuckets = 32
	// SetupBuckets is the number of buckets shims send and routers keep:
	// bucket i counts setups shorter than 2^i µs (and at least 2^(i-1) µs
	// for i > 0); the last is open-ended (≥ 2^22 µs, about 4 s).
	SetupBuckets = 24
)

// Stats is the payload of a STATS message: what one shim process saw since
// its previous STATS. Counts are deltas, so the router adds them up.
type Stats struct {
	Fallbacks []uint32 // by FallbackReason
	Setups    []uint32 // log2 histogram of accelerated connect setup times, µs
}

// Encode returns the payload bytes: u16 reason count R, u16 bucket count B,
// u32 0, then R u32 fallback counts and B u32 bucket counts.
func (s Stats) Encode() []byte {
	le := binary.LittleEndian
	b := make([]byte, 8, 8+4*(len(s.Fallbacks)+len(s.Setups)))
	le.PutUint16(b, uint16(len(s.Fallbacks)))
	le.PutUint16(b[2:], uint16(len(s.Setups)))
	for _, v := range s.Fallbacks {
		b = le.AppendUint32(b, v)
	}
	for _, v := range s.Setups {
		b = le.AppendUint32(b, v)
	}
	return b
}

// DecodeStats parses a STATS payload.
func DecodeStats(b []byte) (Stats, error) {
	if len(b) < 8 {
		return Stats{}, fmt.Errorf("%w: STATS payload has %d bytes, want at least 8", ErrMalformed, len(b))
	}
	le := binary.LittleEndian
	r, n := int(le.Uint16(b)), int(le.Uint16(b[2:]))
	if r > MaxStatsReasons || n > MaxStatsBuckets {
		return Stats{}, fmt.Errorf("%w: STATS with %d reasons and %d buckets (at most %d and %d)", ErrMalformed, r, n, MaxStatsReasons, MaxStatsBuckets)
	}
	if le.Uint32(b[4:]) != 0 {
		return Stats{}, fmt.Errorf("%w: STATS reserved field is not 0", ErrMalformed)
	}
	if want := 8 + 4*(r+n); len(b) != want {
		return Stats{}, payloadError(TypeStats, len(b), want)
	}
	s := Stats{Fallbacks: make([]uint32, r), Setups: make([]uint32, n)}
	for i := range s.Fallbacks {
		s.Fallbacks[i] = le.Uint32(b[8+4*i:])
	}
	for i := range s.Setups {
		s.Setups[i] = le.Uint32(b[8+4*(r+i):])
	}
	return s, nil
}
