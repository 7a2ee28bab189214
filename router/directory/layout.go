package directory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/slimnet/slim/router/protocol"
)

// Layout constants (docs/protocol.md §2).
const (
	Magic      = 0x444d4c53 // the bytes "SLMD"
	Version    = 2          // 2: a hash that mixes every bit, and the replaced word
	HeaderSize = 64         // bytes before the first slot
	SlotSize   = 16         // bytes of one slot

	offMagic    = 0
	offVersion  = 4
	offSequence = 8
	offCapacity = 12
	offNetwork  = 16
	offBits     = 20
	offCount    = 24
	offReplaced = 28 // nonzero: the router moved to a new, larger file
)

// ReplacedOffset is the header word a router sets in the file it stopped
// writing to (a new, larger file took its place): a shim that reads it
// nonzero maps the path again at once.
const ReplacedOffset = offReplaced

// DefaultCapacity is the number of slots of a new table: room for half as
// many listeners (a 16 KiB file, cheap to rewrite on every change); the
// table doubles as the directory grows past that.
const DefaultCapacity = 1024

// Entry maps an overlay listener to the host listener standing for it.
// Overlay is always the IPv4 overlay address: an IPv6 overlay address is
// a function of it (overlay.Config.IPv6Of), and Flags says which of the
// two the listener takes.
type Entry struct {
	Overlay netip.AddrPort
	Host    netip.AddrPort
	Flags   uint16
}

// Slot flags (docs/protocol.md §2): which clients a listener takes. 0 is
// an IPv4 listener (AF_INET, or AF_INET6 bound to a v4-mapped address).
const (
	// FlagIPv6: it takes clients of its IPv6 overlay address (an
	// AF_INET6 listener on :: or on that address).
	FlagIPv6 = protocol.DirFlagIPv6
	// FlagNoIPv4: it takes no IPv4 clients (IPV6_V6ONLY, or bound to its
	// IPv6 overlay address). Only with FlagIPv6.
	FlagNoIPv4 = protocol.DirFlagNoIPv4
	// FlagsKnown are the flags a table may hold.
	FlagsKnown = protocol.DirFlagsKnown
)

// Takes says whether a listener with flags takes a client of the given
// family (ipv6: the client connects to the IPv6 overlay address).
func Takes(flags uint16, ipv6 bool) bool {
	if ipv6 {
		return flags&FlagIPv6 != 0
	}
	return flags&FlagNoIPv4 == 0
}

// Size is the file size of a table with the given capacity.
func Size(capacity int) int { return HeaderSize + capacity*SlotSize }

// slotOf is the first slot probed for a key: a 32-bit finalizer (every
// output bit depends on every input bit) of the raw network byte order
// values read as little-endian integers, masked to the capacity. The
// addresses of one host's subnet differ only in their last bytes, which
// a plain multiplication leaves out of the low bits: they all started at
// the same few slots (version 1's hash).
func slotOf(ip [4]byte, port uint16, capacity int) int {
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], port)
	return int(Hash(binary.LittleEndian.Uint32(ip[:]), uint32(binary.LittleEndian.Uint16(p[:]))) & uint32(capacity-1))
}

// Hash is the table's hash of an overlay address: ipRaw and portRaw are
// the network byte order values read as little-endian integers (what a
// shim has in sin_addr and sin_port on x86 and arm64).
func Hash(ipRaw, portRaw uint32) uint32 {
	h := ipRaw ^ portRaw*0x9e3779b9
	h ^= h >> 16
	h *= 0x7feb352d
	h ^= h >> 15
	h *= 0x846ca68b
	h ^= h >> 16
	return h
}

// CapacityFor is the smallest table (a power of two, at least
// DefaultCapacity) that holds n entries: half as many as it has slots.
func CapacityFor(n int) int {
	c := DefaultCapacity
	for c/2 < n {
		c *= 2
	}
	return c
}

// encodeSlots lays entries out in open-addressed slots.
func encodeSlots(entries []Entry, capacity int) ([]byte, error) {
	if len(entries) > capacity/2 {
		return nil, fmt.Errorf("%d listeners exceed the directory's room for %d", len(entries), capacity/2)
	}
	slots := make([]byte, capacity*SlotSize)
	for _, e := range entries {
		ip := e.Overlay.Addr().As4()
		i := slotOf(ip, e.Overlay.Port(), capacity)
		for binary.LittleEndian.Uint32(slots[i*SlotSize:]) != 0 {
			i = (i + 1) & (capacity - 1)
		}
		s := slots[i*SlotSize : (i+1)*SlotSize]
		copy(s[0:4], ip[:])
		binary.BigEndian.PutUint16(s[portOffset(e.Flags):], e.Overlay.Port())
		binary.LittleEndian.PutUint16(s[6:], e.Flags)
		host := e.Host.Addr().As4()
		copy(s[8:12], host[:])
		binary.BigEndian.PutUint16(s[12:], e.Host.Port())
	}
	return slots, nil
}

// portOffset is where a slot with flags holds its overlay port: an
// IPv6-only listener's at offset 14, with 0 at offset 4, so that shims
// from before the flags (which compare offset 4) never send an IPv4
// client to it.
func portOffset(flags uint16) int {
	if flags&FlagNoIPv4 != 0 {
		return 14
	}
	return 4
}

// slotPort is a slot's overlay port.
func slotPort(s []byte) uint16 {
	return binary.BigEndian.Uint16(s[portOffset(binary.LittleEndian.Uint16(s[6:])):])
}

// Lookup finds the host listener for an IPv4 overlay address in a table's
// bytes, as a shim does. It is used by tests and tools; it takes no lock,
// so the caller must hold the bytes still.
func Lookup(table []byte, overlay netip.AddrPort) (netip.AddrPort, bool, error) {
	return LookupFamily(table, overlay, false)
}

// LookupFamily is Lookup for a client of the given family: ipv6, one that
// connects to the IPv6 overlay address of which overlay is the IPv4 one.
// Two listeners may share a key (an IPv4 one and an IPv6-only one on the
// same port): a lookup skips the slots of the other family.
func LookupFamily(table []byte, overlay netip.AddrPort, ipv6 bool) (netip.AddrPort, bool, error) {
	capacity, err := checkHeader(table)
	if err != nil {
		return netip.AddrPort{}, false, err
	}
	ip := overlay.Addr().As4()
	slots := table[HeaderSize:]
	for i, n := slotOf(ip, overlay.Port(), capacity), 0; n < capacity; i, n = (i+1)&(capacity-1), n+1 {
		s := slots[i*SlotSize : (i+1)*SlotSize]
		if binary.LittleEndian.Uint32(s) == 0 {
			return netip.AddrPort{}, false, nil
		}
		if [4]byte(s[0:4]) == ip && slotPort(s) == overlay.Port() &&
			Takes(binary.LittleEndian.Uint16(s[6:]), ipv6) {
			host := netip.AddrPortFrom(netip.AddrFrom4([4]byte(s[8:12])), binary.BigEndian.Uint16(s[12:]))
			return host, true, nil
		}
	}
	return netip.AddrPort{}, false, nil
}

// Entries lists every mapping in a table's bytes, for tools and tests.
func Entries(table []byte) ([]Entry, error) {
	capacity, err := checkHeader(table)
	if err != nil {
		return nil, err
	}
	var es []Entry
	for i := range capacity {
		s := table[HeaderSize+i*SlotSize : HeaderSize+(i+1)*SlotSize]
		if binary.LittleEndian.Uint32(s) == 0 {
			continue
		}
		es = append(es, Entry{
			Overlay: netip.AddrPortFrom(netip.AddrFrom4([4]byte(s[0:4])), slotPort(s)),
			Host:    netip.AddrPortFrom(netip.AddrFrom4([4]byte(s[8:12])), binary.BigEndian.Uint16(s[12:])),
			Flags:   binary.LittleEndian.Uint16(s[6:]),
		})
	}
	return es, nil
}

// checkHeader checks a table's header and returns its capacity.
func checkHeader(table []byte) (int, error) {
	le := binary.LittleEndian
	if len(table) < HeaderSize || le.Uint32(table[offMagic:]) != Magic {
		return 0, errors.New("not a directory table")
	}
	if v := le.Uint32(table[offVersion:]); v != Version {
		return 0, fmt.Errorf("directory table version %d, want %d", v, Version)
	}
	capacity := int(le.Uint32(table[offCapacity:]))
	if capacity == 0 || capacity&(capacity-1) != 0 || len(table) < Size(capacity) {
		return 0, errors.New("directory table truncated or of a bad capacity")
	}
	return capacity, nil
}
