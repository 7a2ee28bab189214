package directory

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
)

func entries(n int) []Entry {
	var es []Entry
	for i := range n {
		es = append(es, Entry{
			Overlay: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(1 + i/200), byte(2 + i%200)}), uint16(80+i%7)),
			Host:    netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), uint16(40000+i)),
		})
	}
	return es
}

func TestPublishAndLookup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory")
	table, err := Open(path, 64, netip.MustParsePrefix("198.19.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	es := entries(32) // half the capacity: the most allowed
	if err := table.Publish(es); err != nil {
		t.Fatal(err)
	}
	snap := table.Snapshot()
	for _, e := range es {
		host, ok, err := Lookup(snap, e.Overlay)
		if err != nil || !ok || host != e.Host {
			t.Errorf("Lookup(%s) = %v, %v, %v; want %s", e.Overlay, host, ok, err, e.Host)
		}
	}
	if _, ok, _ := Lookup(snap, netip.MustParseAddrPort("198.19.9.9:80")); ok {
		t.Error("found a listener that was never published")
	}
	if err := table.Publish(entries(33)); err == nil {
		t.Error("published more than half the capacity")
	}
}

func TestReopenKeepsFileAndClears(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory")
	overlay := netip.MustParsePrefix("198.19.0.0/16")
	first, err := Open(path, 64, overlay)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Publish(entries(3)); err != nil {
		t.Fatal(err)
	}
	seq := first.Snapshot()[offSequence]
	first.Close()
	second, err := Open(path, 64, overlay)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	snap := second.Snapshot()
	if _, ok, _ := Lookup(snap, entries(1)[0].Overlay); ok {
		t.Error("a restarted router's table still holds the old entries")
	}
	if snap[offSequence] <= seq || snap[offSequence]%2 != 0 {
		t.Errorf("sequence went from %d to %d; want a larger even value", seq, snap[offSequence])
	}
}

func TestOpenRejectsBadCapacity(t *testing.T) {
	for _, c := range []int{0, 3, 100} {
		if _, err := Open(filepath.Join(t.TempDir(), fmt.Sprint(c)), c, netip.MustParsePrefix("198.19.0.0/16")); err == nil {
			t.Errorf("capacity %d accepted", c)
		}
	}
}
