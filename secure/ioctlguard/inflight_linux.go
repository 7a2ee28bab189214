package ioctlguard

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inflightSlots is how many received, unanswered notifications the
// table holds (a thread of the program waits in each); past that, one is
// not tracked.
const inflightSlots = 4096

// inflight is a table of the notifications the guard received and has not
// answered, in memory shared with its backstop: should the guard die, the
// backstop lets the kernel run each (the kernel cannot give them out again,
// and their callers would wait forever).
type inflight struct {
	fd    int // memfd
	slots []uint64
}

// newInflight makes the table in a memfd.
func newInflight() (*inflight, error) {
	fd, err := unix.MemfdCreate("slim-guard-inflight", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	if err := unix.Ftruncate(fd, inflightSlots*8); err != nil {
		unix.Close(fd)
		return nil, err
	}
	t, err := mapInflight(fd)
	if err != nil {
		unix.Close(fd)
	}
	return t, err
}

// mapInflight maps a table the guard made.
func mapInflight(fd int) (*inflight, error) {
	mem, err := unix.Mmap(fd, 0, inflightSlots*8, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map the in-flight table: %w", err)
	}
	return &inflight{fd: fd, slots: unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), inflightSlots)}, nil
}

// track notes notification id (never 0 in practice; 0 is not tracked)
// and returns its slot, or -1.
func (t *inflight) track(id uint64) int {
	if t == nil || id == 0 {
		return -1
	}
	start := int(id % inflightSlots)
	for i := range inflightSlots {
		slot := (start + i) % inflightSlots
		if atomic.CompareAndSwapUint64(&t.slots[slot], 0, id) {
			return slot
		}
	}
	return -1
}

// untrack forgets notification id, answered.
func (t *inflight) untrack(slot int, id uint64) {
	if t != nil && slot >= 0 {
		atomic.CompareAndSwapUint64(&t.slots[slot], id, 0)
	}
}

// release lets the kernel run every notification left in the table.
func (t *inflight) release(listener int) int {
	n := 0
	for i := range t.slots {
		if id := atomic.SwapUint64(&t.slots[i], 0); id != 0 {
			if send(listener, notifResp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}) == nil {
				n++
			}
		}
	}
	return n
}
