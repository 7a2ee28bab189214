package directory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Table is the router's writable mapping of the directory file.
type Table struct {
	mu      sync.Mutex
	path    string
	overlay netip.Prefix
	file    *os.File
	mem     []byte
}

// Mode is the directory file's: readable by root only. Shims of other
// users get a read-only descriptor of it from the router.
const Mode = 0o600

// Open maps the directory file at path for writing, creating it if needed,
// with room for capacity/2 listeners at first; Publish grows it. An
// existing file of this version and at least that capacity is reused in
// place — shims that mapped it keep seeing updates after a router restart
// — and emptied. Another file is replaced (a new inode, which shims map
// again; a shim never sees a mapped file's layout change under it).
func Open(path string, capacity int, overlay netip.Prefix) (*Table, error) {
	if capacity <= 0 || capacity&(capacity-1) != 0 {
		return nil, fmt.Errorf("directory capacity %d is not a power of two", capacity)
	}
	t := &Table{path: path, overlay: overlay}
	if existing := reusableCapacity(path); existing >= capacity {
		f, mem, err := mapFile(path, existing, 0)
		if err != nil {
			return nil, err
		}
		t.file, t.mem = f, mem
		t.initHeader()
		return t, t.Publish(nil)
	}
	return t, t.replace(make([]byte, capacity*SlotSize), 0)
}

// reusableCapacity is the capacity of the file at path if it is a table of
// this version, or 0.
func reusableCapacity(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	header := make([]byte, HeaderSize)
	if _, err := f.ReadAt(header, 0); err != nil {
		return 0
	}
	le := binary.LittleEndian
	capacity := int(le.Uint32(header[offCapacity:]))
	st, err := f.Stat()
	if err != nil || le.Uint32(header[offMagic:]) != Magic || le.Uint32(header[offVersion:]) != Version ||
		capacity <= 0 || capacity&(capacity-1) != 0 || st.Size() < int64(Size(capacity)) {
		return 0
	}
	return capacity
}

// mapFile opens (flags: 0, or O_EXCL to create a new file) and maps a table
// file of the given capacity for writing.
func mapFile(path string, capacity, flags int) (*os.File, []byte, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|flags, Mode)
	if err != nil {
		return nil, nil, fmt.Errorf("opening directory: %w", err)
	}
	if err := f.Chmod(Mode); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("opening directory: %w", err)
	}
	if err := f.Truncate(int64(Size(capacity))); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("sizing directory: %w", err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, Size(capacity), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("mapping directory: %w", err)
	}
	return f, mem, nil
}

func (t *Table) capacity() int { return (len(t.mem) - HeaderSize) / SlotSize }

func (t *Table) word(offset int) *uint32 { return (*uint32)(unsafe.Pointer(&t.mem[offset])) }

func (t *Table) initHeader() {
	le := binary.LittleEndian
	seq := atomic.LoadUint32(t.word(offSequence))
	if le.Uint32(t.mem[offMagic:]) != Magic || seq%2 == 1 {
		seq = 0 // a new file, or a writer that died mid-update
	}
	atomic.StoreUint32(t.word(offSequence), seq|1)
	le.PutUint32(t.mem[offMagic:], Magic)
	le.PutUint32(t.mem[offVersion:], Version)
	le.PutUint32(t.mem[offCapacity:], uint32(t.capacity()))
	network := t.overlay.Addr().As4()
	copy(t.mem[offNetwork:offNetwork+4], network[:])
	le.PutUint32(t.mem[offBits:], uint32(t.overlay.Bits()))
	atomic.StoreUint32(t.word(offReplaced), 0)
	atomic.StoreUint32(t.word(offSequence), (seq|1)+1)
}

// Publish replaces the table's contents with entries. Readers see either the
// old or the new contents, never a mix. A table too small for them (more
// than half its slots) is replaced by a larger file first.
func (t *Table) Publish(entries []Entry) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mem == nil {
		return errors.New("directory table is closed")
	}
	capacity := t.capacity()
	for capacity/2 < len(entries) {
		capacity *= 2
	}
	slots, err := encodeSlots(entries, capacity)
	if err != nil {
		return err
	}
	if capacity != t.capacity() {
		return t.replace(slots, len(entries))
	}
	seq := atomic.LoadUint32(t.word(offSequence))
	atomic.StoreUint32(t.word(offSequence), seq+1) // odd: writing
	copy(t.mem[HeaderSize:], slots)
	binary.LittleEndian.PutUint32(t.mem[offCount:], uint32(len(entries)))
	atomic.StoreUint32(t.word(offSequence), seq+2) // even: stable
	return nil
}

// replace writes slots into a new file, renames it over the table's path
// and marks the old mapping replaced, so that shims map the new file at
// their next lookup. Readers never see a partly written file.
func (t *Table) replace(slots []byte, count int) error {
	next := &Table{path: t.path, overlay: t.overlay}
	tmp := t.path + ".new"
	os.Remove(tmp) // left by a router that died here
	f, mem, err := mapFile(tmp, len(slots)/SlotSize, os.O_EXCL)
	if err != nil {
		return err
	}
	next.file, next.mem = f, mem
	next.initHeader()
	copy(next.mem[HeaderSize:], slots)
	binary.LittleEndian.PutUint32(next.mem[offCount:], uint32(count))
	if err := os.Rename(tmp, t.path); err != nil {
		next.unmap()
		os.Remove(tmp)
		return fmt.Errorf("replacing directory: %w", err)
	}
	if t.mem != nil {
		atomic.StoreUint32(t.word(offReplaced), 1)
		t.unmap()
	}
	t.file, t.mem = next.file, next.mem
	return nil
}

func (t *Table) unmap() error {
	err := unix.Munmap(t.mem)
	t.mem = nil
	return errors.Join(err, t.file.Close())
}

// Snapshot returns a copy of the table's bytes, for Lookup in tests.
func (t *Table) Snapshot() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.mem...)
}

// Close unmaps the table. The file stays, so that shims keep a valid (if
// no longer updated) mapping until a router opens it again.
func (t *Table) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mem == nil {
		return nil
	}
	return t.unmap()
}
