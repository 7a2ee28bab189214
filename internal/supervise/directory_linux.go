package supervise

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/directory"
)

// directoryCheck is how often the supervisor looks whether the router made
// a new directory file (a restart).
const directoryCheck = time.Second

// directoryTable is the router's directory (docs/protocol.md §2), mapped
// read-only, as the shim maps it. Old mappings are kept (a lookup may be
// in one); one leaks per router restart.
type directoryTable struct {
	path   string
	router *router
	mu     sync.Mutex
	mem    []byte
	ino    uint64
	next   time.Time
}

func newDirectory(routerSock string, r *router) *directoryTable {
	return &directoryTable{path: filepath.Join(filepath.Dir(routerSock), "directory"), router: r}
}

// lookup returns the host listener standing for an overlay listener.
func (d *directoryTable) lookup(overlay netip.AddrPort) (netip.AddrPort, bool) {
	mem := d.current()
	if mem == nil {
		return netip.AddrPort{}, false
	}
	seq := (*uint32)(unsafe.Pointer(&mem[8]))
	for range 10000 {
		before := atomic.LoadUint32(seq)
		if before&1 != 0 {
			continue
		}
		host, ok, err := directory.Lookup(mem, overlay)
		if atomic.LoadUint32(seq) != before {
			continue
		}
		if err != nil || !ok || !host.Addr().IsValid() || host.Port() == 0 || host.Addr().IsUnspecified() {
			return netip.AddrPort{}, false
		}
		return host, true
	}
	return netip.AddrPort{}, false // the writer is stuck: a miss
}

// current returns the mapping, (re)mapping the file when it is new.
func (d *directoryTable) current() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Now().Before(d.next) {
		return d.mem
	}
	d.next = time.Now().Add(directoryCheck)
	var st unix.Stat_t
	if err := unix.Stat(d.path, &st); err != nil {
		d.mem = nil
		return nil
	}
	if d.mem != nil && st.Ino == d.ino {
		return d.mem
	}
	mem, err := d.mapFile()
	if err != nil {
		d.mem = nil
		return nil
	}
	d.mem, d.ino = mem, st.Ino
	return mem
}

// mapFile maps the table: by its path, or through the router (TABLE) when
// this user may not open it.
func (d *directoryTable) mapFile() ([]byte, error) {
	fd, err := unix.Open(d.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		fd, err = d.router.table()
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Size < directory.HeaderSize {
		return nil, os.ErrInvalid
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	capacity := int(binary.LittleEndian.Uint32(mem[12:]))
	if binary.LittleEndian.Uint32(mem) != directory.Magic || capacity == 0 || directory.Size(capacity) > len(mem) {
		unix.Munmap(mem)
		return nil, os.ErrInvalid
	}
	return mem, nil
}
