package secure

import "math/bits"

// SipHash24 is SipHash-2-4 (Aumasson and Bernstein, 2012) under the key
// k0 || k1 of the 16-byte message m0 || m1, all four words little-endian.
// It is slim_siphash in secure/bpf/siphash.h, in Go.
func SipHash24(k0, k1, m0, m1 uint64) uint64 {
	s := sipState{
		k0 ^ 0x736f6d6570736575,
		k1 ^ 0x646f72616e646f6d,
		k0 ^ 0x6c7967656e657261,
		k1 ^ 0x7465646279746573,
	}
	s.block(m0)
	s.block(m1)
	s.block(16 << 56) // the length byte; 16 bytes leave no tail
	s[2] ^= 0xff
	for range 4 {
		s.round()
	}
	return s[0] ^ s[1] ^ s[2] ^ s[3]
}

// sipState is SipHash's v0..v3.
type sipState [4]uint64

// block absorbs one message word with two compression rounds.
func (s *sipState) block(m uint64) {
	s[3] ^= m
	s.round()
	s.round()
	s[0] ^= m
}

// round is one SipRound.
func (s *sipState) round() {
	s[0] += s[1]
	s[1] = bits.RotateLeft64(s[1], 13) ^ s[0]
	s[0] = bits.RotateLeft64(s[0], 32)
	s[2] += s[3]
	s[3] = bits.RotateLeft64(s[3], 16) ^ s[2]
	s[0] += s[3]
	s[3] = bits.RotateLeft64(s[3], 21) ^ s[0]
	s[2] += s[1]
	s[1] = bits.RotateLeft64(s[1], 17) ^ s[2]
	s[2] = bits.RotateLeft64(s[2], 32)
}

// SynMAC is the MAC a client's SYN carries in secure mode, the same as
// syn_mac() in secure/bpf/secure.c: SipHash24 under the SynKey of the
// connection's four-tuple and the client's overlay IP.
//
// Every argument is the raw network-byte-order value as the kernel holds it
// in memory, read as a little-endian integer, the way the BPF program sees
// it on x86 and arm64: for the address 10.0.0.1 saddr is
// binary.LittleEndian.Uint32([]byte{10, 0, 0, 1}) = 0x0100000a, and for
// port 80 sport is binary.LittleEndian.Uint16([]byte{0, 80}) = 0x5000.
func SynMAC(k0, k1 uint64, saddr, daddr uint32, sport, dport uint16, overlay uint32) uint64 {
	m0 := uint64(saddr)<<32 | uint64(daddr)
	m1 := uint64(sport)<<48 | uint64(dport)<<32 | uint64(overlay)
	return SipHash24(k0, k1, m0, m1)
}
