package namebook

import (
	"math/rand"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// testBook is a new book of slots slots, mapped twice (as two processes
// map one).
func testBook(t *testing.T, slots int) (int, *Book, *Book) {
	t.Helper()
	fd, err := create(slots)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	a, err := Map(fd)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Map(fd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return fd, a, b
}

func names(port uint16) Names {
	return Names{Local: netip.AddrPortFrom(netip.MustParseAddr("198.19.1.2"), 80), Peer: netip.AddrPortFrom(netip.MustParseAddr("198.19.2.2"), port)}
}

// TestBookIsSealed: a book cannot be resized (a process that shrank it
// would crash every other one that maps it) nor sealed otherwise.
func TestBookIsSealed(t *testing.T) {
	fd, err := Create()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size != int64(Size(Slots)) {
		t.Errorf("size %d (%v), want %d", st.Size, err, Size(Slots))
	}
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	want := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	if err != nil || seals&want != want {
		t.Errorf("seals %#x (%v), want %#x", seals, err, want)
	}
	if err := unix.Ftruncate(fd, 64); err == nil {
		t.Error("a book could be shrunk")
	}
}

// TestBookPutGet: what one mapping writes the other reads, by cookie; a
// socket written again has its latest names; an unknown cookie and
// cookie 0 have none.
func TestBookPutGet(t *testing.T) {
	_, a, b := testBook(t, 64)
	if !a.Put(7, names(1000), 1) || !a.Put(8, names(2000), 1) {
		t.Fatal("Put refused")
	}
	if got, ok := b.Get(7); !ok || got != names(1000) {
		t.Errorf("Get(7) = %+v %v", got, ok)
	}
	a.Put(7, names(1001), 2)
	if got, ok := b.Get(7); !ok || got != names(1001) {
		t.Errorf("Get(7) after a second Put = %+v %v; want the latest", got, ok)
	}
	if _, ok := b.Get(9); ok {
		t.Error("Get of a cookie never written found names")
	}
	if a.Put(0, names(1), 1) {
		t.Error("Put of cookie 0 accepted")
	}
}

// sameBucket returns n cookies of one bucket.
func sameBucket(slots uint32, n int) []uint64 {
	var out []uint64
	want := Bucket(1, slots)
	for c := uint64(1); len(out) < n; c++ {
		if Bucket(c, slots) == want {
			out = append(out, c)
		}
	}
	return out
}

// TestBookEvictsOldest: a bucket's fifth cookie replaces its oldest.
func TestBookEvictsOldest(t *testing.T) {
	_, a, b := testBook(t, 64)
	cookies := sameBucket(64, Ways+1)
	for i, c := range cookies {
		a.Put(c, names(uint16(i+1)), uint32(10+i))
	}
	for i, c := range cookies {
		_, ok := b.Get(c)
		if want := i != 0; ok != want {
			t.Errorf("cookie %d (written %d): kept %v, want %v", c, i, ok, want)
		}
	}
}

// TestBookWriterThatDied: a slot left odd by a writer (it died in the
// middle, or is stopped) is neither read nor written over; the bucket's
// other slots serve, and with every one of them odd a write is refused.
func TestBookWriterThatDied(t *testing.T) {
	_, a, b := testBook(t, 64)
	cookies := sameBucket(64, Ways)
	for i, c := range cookies {
		a.Put(c, names(uint16(i+1)), uint32(100+i))
	}
	first := Bucket(cookies[0], 64)
	atomic.AddUint32(a.word(first, OffSeq), 1) // the writer of the oldest slot died
	if _, ok := b.Get(a.slotCookie(first)); ok {
		t.Error("a slot being written was read")
	}
	if !b.Put(99, names(9), 200) {
		t.Fatal("no slot for a write while three are free")
	}
	if atomic.LoadUint32(a.word(first, OffSeq))%2 == 0 {
		t.Error("a slot being written was taken over")
	}
	for s := first + 1; s < first+Ways; s++ {
		atomic.AddUint32(a.word(s, OffSeq), 1)
	}
	if b.Put(cookies[1], names(10), 300) {
		t.Error("a write went to a slot being written")
	}
}

// TestBookConcurrent: writers and readers in two mappings at once never
// read torn names: each entry's peer port is a function of its cookie.
func TestBookConcurrent(t *testing.T) {
	_, a, b := testBook(t, 16)
	var wg sync.WaitGroup
	var torn atomic.Int32
	for w := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 20000 {
				c := uint64(i%40 + 1)
				a.Put(c, names(uint16(c*7)), uint32(i+w))
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 20000 {
				c := uint64(i%40 + 1)
				if got, ok := b.Get(c); ok && got.Peer.Port() != uint16(c*7) {
					torn.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := torn.Load(); n != 0 {
		t.Errorf("%d reads returned another cookie's or torn names", n)
	}
}

// TestBookGarbage: a book full of garbage (a hostile process wrote it)
// gives no names that do not decode, and never panics.
func TestBookGarbage(t *testing.T) {
	_, a, b := testBook(t, 64)
	rand.New(rand.NewSource(1)).Read(a.mem[HeaderSize:])
	for c := uint64(0); c < 10000; c++ {
		if n, ok := b.Get(c); ok && n.Form > FormIPv6 {
			t.Fatalf("cookie %d: names %+v", c, n)
		}
	}
}

// TestMapRefuses: a descriptor that is no book, or a book whose header
// does not match its size, is not mapped.
func TestMapRefuses(t *testing.T) {
	fd, _, _ := testBook(t, 64)
	bad := []byte{0, 0, 0, 0}
	if _, err := unix.Pwrite(fd, bad, OffSlots); err != nil {
		t.Fatal(err)
	}
	if _, err := Map(fd); err == nil {
		t.Error("a book of 0 slots was mapped")
	}
	var p [2]int
	unix.Pipe(p[:])
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := Map(p[0]); err == nil {
		t.Error("a pipe was mapped")
	}
}

// slotCookie is the cookie a slot holds.
func (b *Book) slotCookie(slot uint32) uint64 { return atomic.LoadUint64(b.cookie(slot)) }
