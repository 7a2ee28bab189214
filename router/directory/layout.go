package directory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Layout constants (docs/protocol.md §2).
const (
	Magic      = 0x444d4c53 // the bytes "SLMD"
	Version    = 1
	HeaderSize = 64 // bytes before the first slot
	SlotSize   = 16 // bytes of one slot

	offMagic    = 0
	offVersion  = 4
	offSequence = 8
	offCapacity = 12
	offNetwork  = 16
	offBits     = 20
	offCount    = 24
)

// DefaultCapacity is the number of slots of a new table: room for half as
// many listeners.
const DefaultCapacity = 8192

// Entry maps an overlay listener to the host listener standing for it.
type Entry struct {
	Overlay netip.AddrPort
	Host    netip.AddrPort
}

// Size is the file size of a table with the given capacity.
func Size(capacity int) int { return HeaderSize + capacity*SlotSize }

// slotOf is the first slot probed for a key: the hash of the raw network
// byte order values read as little-endian integers.
func slotOf(ip [4]byte, port uint16, capacity int) int {
	ipRaw := binary.LittleEndian.Uint32(ip[:])
	var p [2]byte
	binary.BigEndian.PutUint16(p[:], port)
	portRaw := uint32(binary.LittleEndian.Uint16(p[:]))
	return int((ipRaw*2654435761 + portRaw*40503) % uint32(capacity))
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
			i = (i + 1) % capacity
		}
		s := slots[i*SlotSize : (i+1)*SlotSize]
		copy(s[0:4], ip[:])
		binary.BigEndian.PutUint16(s[4:], e.Overlay.Port())
		host := e.Host.Addr().As4()
		copy(s[8:12], host[:])
		binary.BigEndian.PutUint16(s[12:], e.Host.Port())
	}
	return slots, nil
}

// Lookup finds the host listener for an overlay address in a table's bytes,
// as a shim does. It is used by tests and tools; it takes no lock, so the
// caller must hold the bytes still.
func Lookup(table []byte, overlay netip.AddrPort) (netip.AddrPort, bool, error) {
	if len(table) < HeaderSize || binary.LittleEndian.Uint32(table[offMagic:]) != Magic {
		return netip.AddrPort{}, false, errors.New("not a directory table")
	}
	capacity := int(binary.LittleEndian.Uint32(table[offCapacity:]))
	if capacity == 0 || len(table) < Size(capacity) {
		return netip.AddrPort{}, false, errors.New("directory table truncated")
	}
	ip := overlay.Addr().As4()
	slots := table[HeaderSize:]
	for i, n := slotOf(ip, overlay.Port(), capacity), 0; n < capacity; i, n = (i+1)%capacity, n+1 {
		s := slots[i*SlotSize : (i+1)*SlotSize]
		if binary.LittleEndian.Uint32(s) == 0 {
			return netip.AddrPort{}, false, nil
		}
		if [4]byte(s[0:4]) == ip && binary.BigEndian.Uint16(s[4:]) == overlay.Port() {
			host := netip.AddrPortFrom(netip.AddrFrom4([4]byte(s[8:12])), binary.BigEndian.Uint16(s[12:]))
			return host, true, nil
		}
	}
	return netip.AddrPort{}, false, nil
}

// Entries lists every mapping in a table's bytes, for tools and tests.
func Entries(table []byte) ([]Entry, error) {
	if len(table) < HeaderSize || binary.LittleEndian.Uint32(table[offMagic:]) != Magic {
		return nil, errors.New("not a directory table")
	}
	capacity := int(binary.LittleEndian.Uint32(table[offCapacity:]))
	if capacity == 0 || len(table) < Size(capacity) {
		return nil, errors.New("directory table truncated")
	}
	var es []Entry
	for i := range capacity {
		s := table[HeaderSize+i*SlotSize : HeaderSize+(i+1)*SlotSize]
		if binary.LittleEndian.Uint32(s) == 0 {
			continue
		}
		es = append(es, Entry{
			Overlay: netip.AddrPortFrom(netip.AddrFrom4([4]byte(s[0:4])), binary.BigEndian.Uint16(s[4:])),
			Host:    netip.AddrPortFrom(netip.AddrFrom4([4]byte(s[8:12])), binary.BigEndian.Uint16(s[12:])),
		})
	}
	return es, nil
}
