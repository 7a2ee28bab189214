package supervise

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/seccompnotif"
)

// errGone says the caller stopped waiting (it died, or on a kernel without
// WAIT_KILLABLE_RECV a signal interrupted it) while the supervisor looked.
var errGone = errors.New("the caller no longer waits")

// request is one trapped call and its caller, which the supervisor opens
// lazily. Anything opened is checked with SECCOMP_IOCTL_NOTIF_ID_VALID
// afterwards, so that a thread ID reused in between cannot mislead it.
type request struct {
	listener int
	n        seccompnotif.Notif
	pidfd    int // -1 until opened
	pidfds   *pidfdCache
	cached   bool  // pidfd is the cache's: not closed with the request
	files    []int // copies of the caller's files, closed before it is answered
	answered bool
	detached bool   // handled on a goroutine of its own from some point on
	done     func() // tells the guard the call is answered
	received time.Time
}

func newRequest(listener int, n seccompnotif.Notif) *request {
	return &request{listener: listener, n: n, pidfd: -1, received: time.Now()}
}

func (r *request) tid() int         { return int(r.n.Pid) }
func (r *request) arg(i int) uint64 { return r.n.Data.Args[i] }
func (r *request) fdArg(i int) int  { return int(int32(r.n.Data.Args[i])) }

// valid reports whether the caller still waits for this answer.
func (r *request) valid() bool { return seccompnotif.IDValid(r.listener, r.n.ID) }

// open opens a pidfd for the caller: its thread on Linux 6.9 and later,
// its process before (the threads of a process share their files).
func (r *request) open() error {
	if r.pidfd >= 0 {
		return nil
	}
	if r.pidfds != nil {
		if fd := r.pidfds.get(r.tid()); fd >= 0 {
			// A live thread pidfd names the caller: no check needed.
			r.pidfd, r.cached = fd, true
			return nil
		}
	}
	fd, err := unix.PidfdOpen(r.tid(), unix.PIDFD_THREAD)
	thread := err == nil
	if err == unix.EINVAL {
		var tgid int
		if tgid, err = threadGroup(r.tid()); err == nil {
			fd, err = unix.PidfdOpen(tgid, 0)
		}
	}
	if err != nil {
		return err
	}
	r.pidfd = fd
	if !r.valid() {
		return errGone
	}
	if thread && r.pidfds != nil && r.pidfds.put(r.tid(), fd) {
		r.cached = true
	}
	return nil
}

// file duplicates the caller's descriptor fd into the supervisor. The
// copy is closed before the caller gets its answer: a program that closes
// the file once the call returned finds it released, as without Slim (a
// listener's port free to bind again).
func (r *request) file(fd int) (int, error) {
	if fd < 0 {
		return -1, unix.EBADF
	}
	if err := r.open(); err != nil {
		return -1, err
	}
	copy, err := unix.PidfdGetfd(r.pidfd, fd, 0) // close-on-exec, always
	if err == unix.ESRCH && r.cached {
		// The cached pidfd's thread is gone: the caller is another
		// thread with its ID.
		r.pidfds.drop(r.tid(), r.pidfd)
		r.pidfd, r.cached = -1, false
		if err := r.open(); err != nil {
			return -1, err
		}
		copy, err = unix.PidfdGetfd(r.pidfd, fd, 0)
	}
	if err == nil {
		r.files = append(r.files, copy)
	}
	return copy, err
}

// release closes the copies of the caller's files.
func (r *request) release() {
	closeAll(r.files)
	r.files = nil
}

// read copies len(b) bytes at addr out of the caller's memory. A thread
// ID reused meanwhile would only make the supervisor read a stranger's
// bytes and act on a call that no longer waits, which the kernel then
// refuses (ADDFD, SEND: ENOENT); writes are checked (write).
func (r *request) read(addr uint64, b []byte) error { return readMemory(r.tid(), addr, b) }

// readMemory copies len(b) bytes at addr out of thread tid's memory.
func readMemory(tid int, addr uint64, b []byte) error {
	if addr == 0 {
		return unix.EFAULT
	}
	local := []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMReadv(tid, local, remote, 0)
	if err != nil || n != len(b) {
		return unix.EFAULT
	}
	return nil
}

// write copies b to addr in the caller's memory, if it still waits
// (unless checked says the caller was checked a moment ago).
func (r *request) write(addr uint64, b []byte, checked bool) error {
	if addr == 0 {
		return unix.EFAULT
	}
	if !checked && !r.valid() {
		return errGone
	}
	local := []unix.Iovec{{Base: &b[0], Len: uint64(len(b))}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	if n, err := unix.ProcessVMWritev(r.tid(), local, remote, 0); err != nil || n != len(b) {
		return unix.EFAULT
	}
	return nil
}

// writeSockaddr writes an address as the kernel does for getsockname,
// getpeername and accept: at most *lenp bytes of it at addr, its full
// length in *lenp.
func (r *request) writeSockaddr(addr, lenp uint64, sa []byte) error {
	var lb [4]byte
	if err := r.read(lenp, lb[:]); err != nil {
		return err
	}
	room := int(int32(binary.LittleEndian.Uint32(lb[:])))
	if room < 0 {
		return unix.EINVAL
	}
	binary.LittleEndian.PutUint32(lb[:], uint32(len(sa)))
	n := min(room, len(sa))
	if n == 0 {
		return r.write(lenp, lb[:], false)
	}
	if addr == 0 {
		return unix.EFAULT
	}
	if !r.valid() {
		return errGone
	}
	// The address, then its length, in one system call (the kernel
	// stops at the first fault: a partial write is EFAULT, as the
	// kernel's own call would fail).
	local := []unix.Iovec{{Base: &sa[0], Len: uint64(n)}, {Base: &lb[0], Len: 4}}
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: n}, {Base: uintptr(lenp), Len: 4}}
	if got, err := unix.ProcessVMWritev(r.tid(), local, remote, 0); err != nil || got != n+4 {
		return unix.EFAULT
	}
	return nil
}

// The answers. Each request is answered once; later answers are ignored.

// proceed lets the kernel run the call as the program made it.
func (r *request) proceed() {
	r.release()
	if !r.answered {
		r.answered = true
		seccompnotif.Continue(r.listener, r.n.ID)
	}
}

// succeed returns val.
func (r *request) succeed(val int64) {
	r.release()
	if !r.answered {
		r.answered = true
		seccompnotif.Return(r.listener, r.n.ID, val, 0)
	}
}

// fail returns -1 with errno.
func (r *request) fail(errno unix.Errno) {
	r.release()
	if !r.answered {
		r.answered = true
		seccompnotif.Return(r.listener, r.n.ID, 0, errno)
	}
}

// install puts a copy of src in the caller at number at, replacing what
// is there at once. It does not answer.
func (r *request) install(src, at int, cloexec bool) error {
	_, err := seccompnotif.AddFD(r.listener, r.n.ID, src, at, cloexec)
	if err == unix.ENOENT {
		return errGone
	}
	return err
}

// installAnswer puts a copy of src in the caller at the lowest free number
// and answers the call with it (accept's result), in one step. The
// caller's copies of its files are closed first, src is not.
func (r *request) installAnswer(src int, cloexec bool) error {
	r.release()
	if r.answered {
		return errors.New("answered already")
	}
	_, err := seccompnotif.AddFDAnswer(r.listener, r.n.ID, src, cloexec)
	switch err {
	case nil:
		r.answered = true
		return nil
	case unix.ENOENT:
		return errGone
	}
	return err
}

func (r *request) close() {
	if r.pidfd >= 0 && !r.cached {
		unix.Close(r.pidfd)
	}
	// A request nobody answered is left to the kernel, never hung.
	r.proceed()
}

// fdFlags reads the caller's file status flags and close-on-exec flag of
// fd and the inode of the file there, from /proc/TID/fdinfo/FD, in one
// read without allocating (one of these per accelerated connect).
func (r *request) fdFlags(fd int) (flags uint64, ino uint64, err error) {
	var path [64]byte
	p := strconv.AppendInt(append(path[:0], "/proc/"...), int64(r.tid()), 10)
	p = strconv.AppendInt(append(p, "/fdinfo/"...), int64(fd), 10)
	var buf [512]byte
	n, err := readInto(string(p), buf[:])
	if err != nil {
		return 0, 0, err
	}
	seen := 0
	for rest := buf[:n]; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		key, value, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch string(key) {
		case "flags":
			if flags, err = strconv.ParseUint(string(value), 8, 64); err != nil {
				return 0, 0, err
			}
			seen++
		case "ino":
			ino, _ = strconv.ParseUint(string(value), 10, 64)
			seen++
		}
	}
	if seen != 2 {
		return 0, 0, fmt.Errorf("fdinfo of fd %d: no flags or inode", fd)
	}
	return flags, ino, nil
}

// readInto reads a small /proc file into buf in one read.
func readInto(path string, buf []byte) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return unix.Read(fd, buf)
}

// readSmall reads a small /proc file in one read.
func readSmall(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// threadGroup reads the process ID of thread tid from /proc.
func threadGroup(tid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Tgid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("no Tgid in /proc/%d/status", tid)
}
