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
	mu       sync.Mutex
	file     *os.File
	mem      []byte
	capacity int
}

// Mode is the directory file's: readable by root only. Shims of other
// users get a read-only descriptor of it from the router.
const Mode = 0o600

// Open maps the directory file at path for writing, creating it if needed.
// An existing file of the same capacity is reused in place — shims that
// mapped it keep seeing updates after a router restart — and emptied.
func Open(path string, capacity int, overlay netip.Prefix) (*Table, error) {
	if capacity <= 0 || capacity&(capacity-1) != 0 {
		return nil, fmt.Errorf("directory capacity %d is not a power of two", capacity)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, Mode)
	if err != nil {
		return nil, fmt.Errorf("opening directory: %w", err)
	}
	if err := f.Chmod(Mode); err != nil {
		f.Close()
		return nil, fmt.Errorf("opening directory: %w", err)
	}
	if err := f.Truncate(int64(Size(capacity))); err != nil {
		f.Close()
		return nil, fmt.Errorf("sizing directory: %w", err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, Size(capacity), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("mapping directory: %w", err)
	}
	t := &Table{file: f, mem: mem, capacity: capacity}
	t.initHeader(overlay)
	return t, t.Publish(nil)
}

func (t *Table) sequence() *uint32 { return (*uint32)(unsafe.Pointer(&t.mem[offSequence])) }

func (t *Table) initHeader(overlay netip.Prefix) {
	le := binary.LittleEndian
	seq := atomic.LoadUint32(t.sequence())
	if le.Uint32(t.mem[offMagic:]) != Magic || seq%2 == 1 {
		seq = 0 // a new file, or a writer that died mid-update
	}
	atomic.StoreUint32(t.sequence(), seq|1)
	le.PutUint32(t.mem[offMagic:], Magic)
	le.PutUint32(t.mem[offVersion:], Version)
	le.PutUint32(t.mem[offCapacity:], uint32(t.capacity))
	network := overlay.Addr().As4()
	copy(t.mem[offNetwork:offNetwork+4], network[:])
	le.PutUint32(t.mem[offBits:], uint32(overlay.Bits()))
	atomic.StoreUint32(t.sequence(), (seq|1)+1)
}

// Publish replaces the table's contents with entries. Readers see either the
// old or the new contents, never a mix.
func (t *Table) Publish(entries []Entry) error {
	slots, err := encodeSlots(entries, t.capacity)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mem == nil {
		return errors.New("directory table is closed")
	}
	seq := atomic.LoadUint32(t.sequence())
	atomic.StoreUint32(t.sequence(), seq+1) // odd: writing
	copy(t.mem[HeaderSize:], slots)
	binary.LittleEndian.PutUint32(t.mem[offCount:], uint32(len(entries)))
	atomic.StoreUint32(t.sequence(), seq+2) // even: stable
	return nil
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
	err := unix.Munmap(t.mem)
	t.mem = nil
	return errors.Join(err, t.file.Close())
}
