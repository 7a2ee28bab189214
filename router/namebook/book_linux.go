package namebook

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Create makes a new, empty book of Slots slots: a memfd sealed against
// resizing (a process that shrank it would crash every other one that
// maps it) and against new seals. The caller owns the descriptor.
func Create() (int, error) { return create(Slots) }

func create(slots int) (int, error) {
	fd, err := unix.MemfdCreate("slim-names", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("name book: memfd_create: %w", err)
	}
	fail := func(what string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("name book: %s: %w", what, err)
	}
	if err := unix.Ftruncate(fd, int64(Size(slots))); err != nil {
		return fail("ftruncate", err)
	}
	var h [HeaderSize]byte
	header(h[:], slots)
	if _, err := unix.Pwrite(fd, h[:], 0); err != nil {
		return fail("header", err)
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return fail("seals", err)
	}
	return fd, nil
}

// Book is a mapped name book.
type Book struct {
	mem   []byte
	slots uint32
}

// Map maps the book at fd read-write (it keeps no reference to fd) and
// checks its header.
func Map(fd int) (*Book, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("name book: %w", err)
	}
	if st.Size < HeaderSize || st.Size > int64(Size(1<<20)) {
		return nil, fmt.Errorf("name book: %d bytes", st.Size)
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("name book: mmap: %w", err)
	}
	slots, err := checkHeader(mem, len(mem))
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	return &Book{mem: mem, slots: slots}, nil
}

// Close unmaps the book.
func (b *Book) Close() error { return unix.Munmap(b.mem) }

func (b *Book) word(slot uint32, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&b.mem[HeaderSize+int(slot)*SlotSize+off]))
}

func (b *Book) cookie(slot uint32) *uint64 {
	return (*uint64)(unsafe.Pointer(&b.mem[HeaderSize+int(slot)*SlotSize+OffCookie]))
}

// NowMS is the clock of the stamps: CLOCK_MONOTONIC in ms, low 32 bits.
func NowMS() uint32 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint32(ts.Sec*1000 + ts.Nsec/1e6)
}

// Put writes the names of the socket with cookie (nonzero) at time now
// (NowMS): in its bucket, over its own earlier entry, else over the
// oldest. It says whether it found a slot to write (every slot of the
// bucket being written: no).
func (b *Book) Put(cookie uint64, n Names, now uint32) bool {
	if cookie == 0 {
		return false
	}
	for _, slot := range b.candidates(cookie) {
		seq, ok := b.lock(slot)
		if !ok {
			continue
		}
		atomic.StoreUint32(b.word(slot, OffStamp), now)
		atomic.StoreUint64(b.cookie(slot), cookie)
		enc := n.Encode()
		for i := 0; i < NamesSize; i += 4 {
			atomic.StoreUint32(b.word(slot, OffNames+i), binary.LittleEndian.Uint32(enc[i:]))
		}
		atomic.StoreUint32(b.word(slot, OffSeq), seq+1)
		return true
	}
	return false
}

// candidates orders the slots of cookie's bucket for a write: its own
// entry first, then the oldest.
func (b *Book) candidates(cookie uint64) [Ways]uint32 {
	first := Bucket(cookie, b.slots)
	var slots [Ways]uint32
	var keys [Ways]uint64
	for i := range uint32(Ways) {
		s := first + i
		slots[i], keys[i] = s, 1<<32|uint64(atomic.LoadUint32(b.word(s, OffStamp)))
		if atomic.LoadUint64(b.cookie(s)) == cookie {
			keys[i] = 0
		}
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
			slots[j], slots[j-1] = slots[j-1], slots[j]
		}
	}
	return slots
}

// lock takes slot for writing, its sequence from even to odd, and
// returns the odd sequence; a slot odd already is another writer's, and
// stays so if that writer died in the middle (a few hundred ns): no one
// takes it over, as a writer that was only stopped would write on,
// mixing its names with the new writer's.
func (b *Book) lock(slot uint32) (uint32, bool) {
	seqp := b.word(slot, OffSeq)
	seq := atomic.LoadUint32(seqp)
	return seq + 1, seq%2 == 0 && atomic.CompareAndSwapUint32(seqp, seq, seq+1)
}

// Get reads the names written for the socket with cookie, if any.
func (b *Book) Get(cookie uint64) (Names, bool) {
	if cookie == 0 {
		return Names{}, false
	}
	first := Bucket(cookie, b.slots)
	for slot := first; slot < first+Ways; slot++ {
		seqp := b.word(slot, OffSeq)
		before := atomic.LoadUint32(seqp)
		if before%2 != 0 || atomic.LoadUint64(b.cookie(slot)) != cookie {
			continue
		}
		var enc [NamesSize]byte
		for i := 0; i < NamesSize; i += 4 {
			binary.LittleEndian.PutUint32(enc[i:], atomic.LoadUint32(b.word(slot, OffNames+i)))
		}
		if atomic.LoadUint32(seqp) != before {
			continue
		}
		n, err := DecodeNames(enc[:])
		return n, err == nil
	}
	return Names{}, false
}
