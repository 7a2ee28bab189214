package directory

import (
	"encoding/binary"
	"net/netip"
	"path/filepath"
	"testing"
)

// TestLookupFamily: an IPv4 listener and an IPv6-only one on the same
// overlay address and port both have a slot; each family of client finds
// its own, and a dual-stack listener takes both.
func TestLookupFamily(t *testing.T) {
	table, err := Open(filepath.Join(t.TempDir(), "directory"), 64, netip.MustParsePrefix("198.19.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	v4 := Entry{Overlay: netip.MustParseAddrPort("198.19.1.2:80"), Host: netip.MustParseAddrPort("198.18.0.1:40000")}
	v6 := Entry{Overlay: v4.Overlay, Host: netip.MustParseAddrPort("198.18.0.1:40001"), Flags: FlagIPv6 | FlagNoIPv4}
	dual := Entry{Overlay: netip.MustParseAddrPort("198.19.1.3:80"), Host: netip.MustParseAddrPort("198.18.0.1:40002"), Flags: FlagIPv6}
	only6 := Entry{Overlay: netip.MustParseAddrPort("198.19.1.4:80"), Host: netip.MustParseAddrPort("198.18.0.1:40003"), Flags: FlagIPv6 | FlagNoIPv4}
	if err := table.Publish([]Entry{v6, v4, dual, only6}); err != nil {
		t.Fatal(err)
	}
	snap := table.Snapshot()
	for _, c := range []struct {
		overlay netip.AddrPort
		ipv6    bool
		want    netip.AddrPort // zero: none
	}{
		{v4.Overlay, false, v4.Host},
		{v4.Overlay, true, v6.Host},
		{dual.Overlay, false, dual.Host},
		{dual.Overlay, true, dual.Host},
		{only6.Overlay, false, netip.AddrPort{}},
		{only6.Overlay, true, only6.Host},
	} {
		got, found, err := LookupFamily(snap, c.overlay, c.ipv6)
		if err != nil || found != c.want.IsValid() || got != c.want {
			t.Errorf("LookupFamily(%s, ipv6 %v) = %v, %v, %v; want %v", c.overlay, c.ipv6, got, found, err, c.want)
		}
	}
	// A shim from before the flags compares IP and the port at offset 4:
	// it must never find the IPv6-only listeners.
	for i := 0; HeaderSize+(i+1)*SlotSize <= len(snap); i++ {
		slot := snap[HeaderSize+i*SlotSize : HeaderSize+(i+1)*SlotSize]
		if binary.LittleEndian.Uint16(slot[6:])&FlagNoIPv4 != 0 && binary.BigEndian.Uint16(slot[4:]) != 0 {
			t.Errorf("IPv6-only slot %d has a port where older shims look: % x", i, slot)
		}
	}
	es, err := Entries(snap)
	if err != nil || len(es) != 4 {
		t.Fatalf("Entries: %v, %v", es, err)
	}
	for _, e := range es {
		if e.Host == v6.Host && (e.Flags != v6.Flags || e.Overlay != v6.Overlay) {
			t.Errorf("entry %v lost its flags", e)
		}
	}
}
