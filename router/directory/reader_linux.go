package directory

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// How a Reader keeps its mapping current and waits for a writer, as the
// shim does (preload/directory.c, docs/protocol.md §2).
const (
	recheckInterval = time.Second            // stat the path for a new file
	writerWait      = 100 * time.Millisecond // a writer odd for longer is dead
)

// Reader is a read-only mapping of a router's directory table, for Go
// programs that look listeners up as the shim does (the supervisor of
// programs the shim cannot preload). Old mappings are kept, since a lookup
// may still be in one: one leaks per new file (a router restart or a
// larger table).
type Reader struct {
	path     string
	fallback func() (int, error) // a descriptor of the table when the path is denied
	stuck    atomic.Uint32       // an odd sequence that outlived writerWait

	mu   sync.Mutex
	mem  []byte
	ino  uint64
	next time.Time
}

// NewReader reads the table at path; fallback, if not nil, gives a
// read-only descriptor of it when this user may not open the path.
func NewReader(path string, fallback func() (int, error)) *Reader {
	return &Reader{path: path, fallback: fallback}
}

// Lookup returns the host listener standing for an overlay listener
// (host port 0: pending, its app not seen accepting yet) and whether the
// table lists it. No table, a bad one, or a writer that died mid-update
// is a miss.
func (r *Reader) Lookup(overlay netip.AddrPort) (host netip.AddrPort, found bool) {
	mem := r.current()
	if mem == nil {
		return netip.AddrPort{}, false
	}
	seq := (*uint32)(unsafe.Pointer(&mem[offSequence]))
	var deadline time.Time
	for {
		before := atomic.LoadUint32(seq)
		if before%2 == 1 {
			if !r.waitForWriter(before, &deadline) {
				return netip.AddrPort{}, false
			}
			continue
		}
		host, found, err := Lookup(mem, overlay)
		if atomic.LoadUint32(seq) != before {
			continue
		}
		return host, found && err == nil
	}
}

// waitForWriter yields while a writer holds odd sequence seq; false once
// it held it for writerWait (remembered: not waited for again).
func (r *Reader) waitForWriter(seq uint32, deadline *time.Time) bool {
	if r.stuck.Load() == seq {
		return false
	}
	if deadline.IsZero() {
		*deadline = time.Now().Add(writerWait)
	}
	if time.Now().After(*deadline) {
		r.stuck.Store(seq)
		return false
	}
	runtime.Gosched()
	return true
}

// current returns the mapping, mapping the file again when the path names
// a new one (checked every recheckInterval, and at once when the router
// marked the mapped file replaced).
func (r *Reader) current() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Now().Before(r.next) && !r.replaced() {
		return r.mem
	}
	r.next = time.Now().Add(recheckInterval)
	var st unix.Stat_t
	if err := unix.Stat(r.path, &st); err != nil {
		r.mem = nil
		return nil
	}
	if r.mem != nil && st.Ino == r.ino {
		return r.mem
	}
	mem, err := r.mapFile()
	if err != nil {
		r.mem = nil
		return nil
	}
	r.mem, r.ino = mem, st.Ino
	return mem
}

func (r *Reader) replaced() bool {
	return r.mem != nil && atomic.LoadUint32((*uint32)(unsafe.Pointer(&r.mem[offReplaced]))) != 0
}

// mapFile maps the table read-only, by its path or through the fallback.
func (r *Reader) mapFile() ([]byte, error) {
	fd, err := unix.Open(r.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) && r.fallback != nil {
		fd, err = r.fallback()
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Size < HeaderSize {
		return nil, errors.New("directory table truncated")
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	if _, err := checkHeader(mem); err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	capacity := int(binary.LittleEndian.Uint32(mem[offCapacity:]))
	return mem[:Size(capacity)], nil
}

// Close unmaps the current mapping; the Reader maps the table again at
// its next lookup. Only for a caller that makes no lookup meanwhile.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem, r.next = nil, time.Time{}
	return err
}
