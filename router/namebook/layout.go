package namebook

import (
	"encoding/binary"
	"fmt"
)

// Layout (docs/protocol.md §6). Every field is little-endian, except the
// names, laid out as protocol.Names (addresses and ports nbo).
const (
	Magic      = 0x4e4d4c53 // the bytes "SLMN"
	Version    = 1
	HeaderSize = 64
	SlotSize   = 32
	// Ways is the number of slots of a bucket: a cookie's entry is in
	// one of the Ways slots of its bucket.
	Ways = 4
	// Slots is the number of slots of a book the router makes.
	Slots = 8192

	// Header offsets: u32 magic, version, slots, ways; the rest 0.
	OffMagic   = 0
	OffVersion = 4
	OffSlots   = 8
	OffWays    = 12

	// Offsets within a slot.
	OffSeq    = 0  // u32: odd while being written
	OffStamp  = 4  // u32: CLOCK_MONOTONIC ms (low 32 bits) of the last write
	OffCookie = 8  // u64: the socket's SO_COOKIE (0: empty)
	OffNames  = 16 // NamesSize bytes: Names
)

// Size is the size of a book of slots slots.
func Size(slots int) int { return HeaderSize + slots*SlotSize }

// Bucket is the first slot of cookie's bucket in a book of slots slots
// (a power of two, at least Ways): a 64-bit mix of the cookie (every bit
// counts: cookies are sequential), masked.
func Bucket(cookie uint64, slots uint32) uint32 {
	h := cookie
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return (uint32(h) & (slots/Ways - 1)) * Ways
}

// header writes a new book's header.
func header(b []byte, slots int) {
	binary.LittleEndian.PutUint32(b[OffMagic:], Magic)
	binary.LittleEndian.PutUint32(b[OffVersion:], Version)
	binary.LittleEndian.PutUint32(b[OffSlots:], uint32(slots))
	binary.LittleEndian.PutUint32(b[OffWays:], Ways)
}

// checkHeader says what is wrong with a book of size bytes whose header
// is b, or nil.
func checkHeader(b []byte, size int) (uint32, error) {
	if len(b) < HeaderSize {
		return 0, fmt.Errorf("name book: %d bytes, shorter than its header", len(b))
	}
	magic, version := binary.LittleEndian.Uint32(b[OffMagic:]), binary.LittleEndian.Uint32(b[OffVersion:])
	slots, ways := binary.LittleEndian.Uint32(b[OffSlots:]), binary.LittleEndian.Uint32(b[OffWays:])
	switch {
	case magic != Magic || version != Version:
		return 0, fmt.Errorf("name book: magic %#x version %d, want %#x version %d", magic, version, Magic, Version)
	case ways != Ways || slots < Ways || slots&(slots-1) != 0 || slots > 1<<20:
		return 0, fmt.Errorf("name book: %d slots of %d ways", slots, ways)
	case size != Size(int(slots)):
		return 0, fmt.Errorf("name book: %d bytes for %d slots, want %d", size, slots, Size(int(slots)))
	}
	return slots, nil
}
