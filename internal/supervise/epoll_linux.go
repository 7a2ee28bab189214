package supervise

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An epoll registration is keyed by the file and the fd number it was
// added under, and the kernel drops it when the file goes away: a socket
// swapped in under a registered fd number gets no events. Before a swap
// the supervisor finds the registrations of the program's socket (kcmp
// KCMP_EPOLL_TFD tells whether an epoll instance has one, its fdinfo says
// with which events and data) and after it moves them to the new socket
// under the same number (epollMover).

// kcmpEpollTFD is KCMP_EPOLL_TFD.
const kcmpEpollTFD = 7

// registration is one epoll registration of a program's fd.
type registration struct {
	epfd   int // the epoll instance's fd number in the program
	events uint32
	data   uint64
}

// epollIndex knows the epoll instances of the program's threads.
type epollIndex struct {
	mu      sync.Mutex
	byTID   map[int]epollList
	created atomic.Uint64 // epoll instances created since start: a list older is rescanned
}

type epollList struct {
	epfds      []int
	generation uint64
}

// forgetAll makes every list stale: the program made an epoll instance.
func (x *epollIndex) forgetAll() { x.created.Add(1) }

// instances lists the epoll fds of thread tid's process.
func (x *epollIndex) instances(tid int, rescan bool) []int {
	gen := x.created.Load()
	x.mu.Lock()
	l, ok := x.byTID[tid]
	x.mu.Unlock()
	if ok && l.generation == gen && !rescan {
		return l.epfds
	}
	epfds := scanEpolls(tid)
	x.mu.Lock()
	if x.byTID == nil || len(x.byTID) > 4096 {
		x.byTID = map[int]epollList{}
	}
	x.byTID[tid] = epollList{epfds: epfds, generation: gen}
	x.mu.Unlock()
	return epfds
}

// scanEpolls lists the fds of thread tid that are epoll instances.
func scanEpolls(tid int) []int {
	dir := fmt.Sprintf("/proc/%d/fd", tid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var epfds []int
	for _, e := range entries {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || link != "anon_inode:[eventpoll]" {
			continue
		}
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			epfds = append(epfds, fd)
		}
	}
	return epfds
}

// registrations finds the epoll registrations of the program's fd, which
// holds the file with inode ino.
func (x *epollIndex) registrations(tid, fd int, ino uint64) ([]registration, error) {
	var regs []registration
	for attempt := 0; attempt < 2; attempt++ {
		regs = regs[:0]
		stale := false
		for _, epfd := range x.instances(tid, attempt > 0) {
			found, err := registered(tid, epfd, fd)
			if err != nil {
				stale = true // no longer an epoll instance
				continue
			}
			if !found {
				continue
			}
			reg, err := readRegistration(tid, epfd, fd, ino)
			if err != nil {
				return nil, err
			}
			regs = append(regs, reg)
		}
		if !stale {
			break
		}
	}
	return regs, nil
}

// registered asks the kernel whether epoll instance epfd of thread tid
// holds a registration of fd under that number.
func registered(tid, epfd, fd int) (bool, error) {
	return epollHolds(tid, fd, tid, epfd, fd)
}

// epollHolds asks the kernel whether epoll instance epfd of thread tid
// holds, under number fd, the file that process pid has at number file
// (kcmp KCMP_EPOLL_TFD).
func epollHolds(pid, file, tid, epfd, fd int) (bool, error) {
	for toff := uint32(0); toff < 4; toff++ {
		slot := struct{ efd, tfd, toff uint32 }{uint32(epfd), uint32(fd), toff}
		r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(pid), uintptr(tid), kcmpEpollTFD,
			uintptr(file), uintptr(unsafe.Pointer(&slot)), 0)
		switch {
		case errno == unix.ENOENT:
			return false, nil
		case errno != 0:
			return false, errno
		case r == 0:
			return true, nil
		}
		// Another file registered under that number (a dup closed
		// since): look further.
	}
	return false, nil
}

// readRegistration reads one registration's events and data from
// /proc/TID/fdinfo/EPFD.
func readRegistration(tid, epfd, fd int, ino uint64) (registration, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fdinfo/%d", tid, epfd))
	if err != nil {
		return registration{}, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if !strings.HasPrefix(line, "tfd:") {
			continue
		}
		fields := strings.Fields(line)
		// tfd: N events: X data: X pos:P ino:X sdev:X
		if len(fields) < 8 || fields[1] != strconv.Itoa(fd) {
			continue
		}
		events, err1 := strconv.ParseUint(fields[3], 16, 32)
		data, err2 := strconv.ParseUint(fields[5], 16, 64)
		fino, err3 := strconv.ParseUint(strings.TrimPrefix(fields[7], "ino:"), 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return registration{}, fmt.Errorf("epoll fdinfo line %q", line)
		}
		if fino != ino {
			continue
		}
		return registration{epfd: epfd, events: uint32(events), data: data}, nil
	}
	return registration{}, fmt.Errorf("epoll %d of thread %d: no registration of fd %d in fdinfo", epfd, tid, fd)
}
