package router

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// caller is who is at the other end of a shim connection, as the kernel
// says: the process that connected, its user and the container it is in,
// if any.
type caller struct {
	PID       int32
	UID       uint32
	Start     uint64 // secure mode: when the process started (with PID, it for good)
	Netns     uint64 // inode of its network namespace
	Container *container
	// seen is what the router learned of the process that cannot change
	// while it lives (nil: nothing is kept). Only the connection's
	// goroutine uses it.
	seen *callerFacts
}

// callerFacts are facts of a caller's process that hold for the rest of
// its life once seen.
type callerFacts struct {
	// filtered: the process was seen under a seccomp filter (secure
	// mode's enrolment check). A filter can never be removed from a
	// thread (seccomp(2)), so once seen, it holds.
	filtered bool
}

// namespaceInode returns the inode of a network namespace file.
func namespaceInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// identifier says who is at the other end of a shim connection: the
// kernel (kernelIdentifier), or in tests whoever the test says.
type identifier interface {
	identify(conn *net.UnixConn) (caller, error)
}

// kernelIdentifier asks the kernel who connected: SO_PEERCRED gives the
// process, /proc/PID/ns/net its network namespace, the registered
// containers the container. The mode reads the process's start time if
// it needs it.
type kernelIdentifier struct {
	containers *containerSet
	mode       mode
}

func (k kernelIdentifier) identify(conn *net.UnixConn) (caller, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return caller{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return caller{}, err
	}
	if credErr != nil {
		return caller{}, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	c := caller{PID: cred.Pid, UID: cred.Uid, seen: &callerFacts{}}
	if c.Start, err = k.mode.callerStart(raw, cred.Pid); err != nil {
		return c, fmt.Errorf("process %d: %w", cred.Pid, err)
	}
	ino, err := namespaceInode(fmt.Sprintf("/proc/%d/ns/net", cred.Pid))
	if err != nil {
		if os.IsNotExist(err) {
			return c, fmt.Errorf("process %d exited", cred.Pid)
		}
		return c, err
	}
	c.Netns, c.Container = ino, k.containers.lookup(ino)
	return c, nil
}

// peerStart is when the peer process pid started. With SO_PEERPIDFD (Linux
// 6.5), a pidfd of the very process that connected vouches that the start
// time read belongs to it, not to a process that took its PID since.
func peerStart(raw syscall.RawConn, pid int32) (uint64, error) {
	pidfd, peerErr := -1, error(nil)
	raw.Control(func(fd uintptr) {
		pidfd, peerErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	})
	switch {
	case peerErr == nil:
		defer unix.Close(pidfd)
	case errors.Is(peerErr, unix.ESRCH):
		return 0, errExited
	default:
		pidfd = -1 // an older kernel: the start time alone
	}
	start, err := processStart(int(pid))
	if err != nil {
		return 0, err
	}
	if pidfd >= 0 && unix.PidfdSendSignal(pidfd, 0, nil, 0) != nil {
		return 0, errExited // gone while its start time was read
	}
	return start, nil
}
