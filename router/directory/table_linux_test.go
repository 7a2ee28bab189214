package directory

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
}

// TestPublishGrowsTheTable: more listeners than half the slots move the
// table to a larger file (a new inode at the same path), and the old
// file, which readers may still have mapped, says so. Once, Publish
// refused them: past 4096 listeners in a cluster, every router's table
// stopped changing.
func TestPublishGrowsTheTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory")
	table, err := Open(path, 64, netip.MustParsePrefix("198.19.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	oldMapping := mapReadOnly(t, path)
	reader := NewReader(path, nil)
	if _, found := reader.Lookup(entries(1)[0].Overlay); found {
		t.Fatal("an empty table lists a listener")
	}
	es := entries(1000)
	if err := table.Publish(es); err != nil {
		t.Fatalf("publishing 1000 listeners in a table of 64 slots: %v", err)
	}
	grown, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(grown) <= len(old) {
		t.Errorf("the table file has %d bytes, as before", len(grown))
	}
	if binary.LittleEndian.Uint32(oldMapping[ReplacedOffset:]) == 0 {
		t.Error("the old file is not marked replaced: shims would read it for another second")
	}
	for _, e := range es {
		if host, found := reader.Lookup(e.Overlay); !found || host != e.Host {
			t.Fatalf("a reader of the old file found %s → %v, %v; want %s", e.Overlay, host, found, e.Host)
		}
	}
	if err := reader.Close(); err != nil {
		t.Fatalf("closing the reader: %v", err)
	}
	if _, found := reader.Lookup(es[0].Overlay); !found {
		t.Error("a closed reader did not map the table again")
	}
}

// TestHashSpreadsASubnet: the addresses of one host's subnet and one
// port, which differ only in their last byte, land in different slots:
// a lookup reads about one slot, whatever the table's size. Once, the
// hash left the last byte out of the low bits: 100k listeners meant
// lookups of 6,248 slots.
func TestHashSpreadsASubnet(t *testing.T) {
	for _, n := range []int{1000, 100000} {
		var es []Entry
		for i := range n {
			ip := netip.AddrFrom4([4]byte{198, 19, byte(i / 250 % 256), byte(2 + i%250)})
			es = append(es, Entry{Overlay: netip.AddrPortFrom(ip, uint16(8080+i/(250*256))), Host: netip.MustParseAddrPort("198.18.0.1:1")})
		}
		capacity := CapacityFor(n)
		used := make([]bool, capacity)
		probes := 0
		for _, e := range es {
			i := slotOf(e.Overlay.Addr().As4(), e.Overlay.Port(), capacity)
			for probes++; used[i]; probes++ {
				i = (i + 1) & (capacity - 1)
			}
			used[i] = true
		}
		if mean := float64(probes) / float64(n); mean > 2 {
			t.Errorf("%d listeners: a lookup reads %.1f slots on average, want at most 2", n, mean)
		}
	}
}

// TestReaderGivesUpOnADeadWriter: a writer that holds the sequence odd
// (a router killed mid-update) costs one bounded wait; later lookups miss
// at once, and a live writer's update ends the wait.
func TestReaderGivesUpOnADeadWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "directory")
	table, err := Open(path, 64, netip.MustParsePrefix("198.19.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	e := entries(1)[0]
	if err := table.Publish([]Entry{e}); err != nil {
		t.Fatal(err)
	}
	reader := NewReader(path, nil)
	seq := table.word(offSequence)
	even := atomic.LoadUint32(seq)
	atomic.StoreUint32(seq, even+1)
	go func() {
		time.Sleep(20 * time.Millisecond) // a preempted writer
		atomic.StoreUint32(seq, even+2)
	}()
	if _, found := reader.Lookup(e.Overlay); !found {
		t.Error("a lookup during a 20 ms update missed")
	}
	atomic.StoreUint32(seq, even+3) // dies mid-update
	if _, found := reader.Lookup(e.Overlay); found {
		t.Error("a lookup in a table being rewritten found an entry")
	}
	start := time.Now()
	reader.Lookup(e.Overlay)
	if waited := time.Since(start); waited >= writerWait {
		t.Errorf("a second lookup waited %v for the dead writer again", waited)
	}
}

func mapReadOnly(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := unix.Mmap(int(f.Fd()), 0, HeaderSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return mem
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

// BenchmarkLookup: a hit in tables of 1k to 100k listeners of 400 hosts'
// subnets (the shim reads the table the same way).
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var es []Entry
			for i := range n {
				ip := netip.AddrFrom4([4]byte{198, 19, byte(i % 400 / 2), byte(2 + i/400%250)})
				es = append(es, Entry{Overlay: netip.AddrPortFrom(ip, uint16(8000+i%2)), Host: netip.MustParseAddrPort("198.18.0.1:1")})
			}
			table, err := Open(filepath.Join(b.TempDir(), "directory"), DefaultCapacity, netip.MustParsePrefix("198.19.0.0/16"))
			if err != nil {
				b.Fatal(err)
			}
			defer table.Close()
			if err := table.Publish(es); err != nil {
				b.Fatal(err)
			}
			mem := table.Snapshot()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, found, _ := Lookup(mem, es[i%n].Overlay); !found {
					b.Fatal("miss")
				}
			}
		})
	}
}
