package secure

import (
	"encoding/binary"
	"testing"
)

// TestSipHash24ReferenceVector checks SipHash24 against the reference
// implementation's vectors_sip64[16]: key 00 01 … 0f, message 00 01 … 0f
// (16 bytes). The reference lists the output as the bytes
// db 9b c2 57 7f cc 2a 3f, the little-endian 0x3f2acc7f57c29bdb.
func TestSipHash24ReferenceVector(t *testing.T) {
	seq := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	k0, k1 := binary.LittleEndian.Uint64(seq), binary.LittleEndian.Uint64(seq[8:])
	got := SipHash24(k0, k1, k0, k1)
	if want := uint64(0x3f2acc7f57c29bdb); got != want {
		t.Errorf("SipHash24(key 00..0f, message 00..0f) = %#016x, want %#016x", got, want)
	}
}

func TestSynMACHashesTheFourTupleAndOverlay(t *testing.T) {
	le := binary.LittleEndian
	saddr, daddr := le.Uint32([]byte{10, 0, 0, 1}), le.Uint32([]byte{10, 0, 0, 2})
	sport, dport := le.Uint16([]byte{0xc3, 0x50}), le.Uint16([]byte{0, 80})
	overlay := le.Uint32([]byte{10, 1, 0, 5})
	got := SynMAC(1, 2, saddr, daddr, sport, dport, overlay)
	// m0 = saddr || daddr, m1 = sport || dport || overlay, high to low.
	want := SipHash24(1, 2, 0x0100000a_0200000a, 0x50c3_5000_0500010a)
	if got != want {
		t.Errorf("SynMAC = %#016x, want SipHash24 of the packed words %#016x", got, want)
	}
	if other := SynMAC(1, 2, saddr, daddr, sport+1, dport, overlay); other == got {
		t.Error("SynMAC ignores the source port")
	}
	if other := SynMAC(1, 3, saddr, daddr, sport, dport, overlay); other == got {
		t.Error("SynMAC ignores the key")
	}
}
