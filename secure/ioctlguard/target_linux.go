package ioctlguard

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// errGone says the caller stopped waiting (it died or a signal interrupted
// the system call) while the guard looked at it.
var errGone = errors.New("the caller is gone")

// errNoAccess says the guard may not open the caller's memory.
var errNoAccess = errors.New("no access to the caller's memory")

// target is the thread behind one notification. Everything it opens is
// checked with SECCOMP_IOCTL_NOTIF_ID_VALID afterwards, so that a thread
// ID reused by another thread in between cannot mislead the guard.
type target struct {
	listener int
	id       uint64
	tid      int
	pidfd    int
	mem      *os.File // /proc/TID/mem, opened on first use
}

// openTarget opens a pidfd for the caller of notification n.
func openTarget(listener int, n notif) (*target, error) {
	pidfd, err := openPidfd(int(n.Pid))
	if err != nil {
		return nil, err
	}
	t := &target{listener: listener, id: n.ID, tid: int(n.Pid), pidfd: pidfd}
	if !idValid(listener, n.ID) {
		t.close()
		return nil, errGone
	}
	return t, nil
}

// openPidfd opens thread tid: a thread pidfd on Linux 6.9 and later, its
// process before (the threads of a process share their files).
func openPidfd(tid int) (int, error) {
	fd, err := unix.PidfdOpen(tid, unix.PIDFD_THREAD)
	if err != unix.EINVAL {
		return fd, err
	}
	tgid, err := threadGroup(tid)
	if err != nil {
		return -1, err
	}
	return unix.PidfdOpen(tgid, 0)
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

// getfd duplicates the caller's file descriptor fd into the guard.
func (t *target) getfd(fd int) (int, error) {
	if fd < 0 {
		return -1, unix.EBADF
	}
	return unix.PidfdGetfd(t.pidfd, fd, 0)
}

// read copies n bytes at addr out of the caller's memory.
func (t *target) read(addr uint64, n int) ([]byte, error) {
	mem, err := t.memory()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if got, err := mem.ReadAt(b, int64(addr)); got != n {
		return nil, fmt.Errorf("read %d bytes at %#x: %w", n, addr, err)
	}
	return b, nil
}

// write copies b to addr in the caller's memory, if the caller still waits.
func (t *target) write(addr uint64, b []byte) error {
	mem, err := t.memory()
	if err != nil {
		return err
	}
	if !idValid(t.listener, t.id) {
		return errGone
	}
	if got, err := mem.WriteAt(b, int64(addr)); got != len(b) {
		return fmt.Errorf("write %d bytes at %#x: %w", len(b), addr, err)
	}
	return nil
}

func (t *target) memory() (*os.File, error) {
	if t.mem != nil {
		return t.mem, nil
	}
	mem, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", t.tid), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoAccess, err)
	}
	if !idValid(t.listener, t.id) {
		mem.Close()
		return nil, errGone
	}
	t.mem = mem
	return mem, nil
}

func (t *target) close() {
	unix.Close(t.pidfd)
	if t.mem != nil {
		t.mem.Close()
	}
}
