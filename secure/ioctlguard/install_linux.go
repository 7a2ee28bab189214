package ioctlguard

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoWaitKillable says the kernel refused SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
// (Linux 5.19), which a filter with socket traps wants.
var ErrNoWaitKillable = errors.New("the kernel lacks SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19)")

// ErrSupervised says the process already has a seccomp filter with a
// listener, which the kernel allows only once per process tree: a nested
// `slim exec`, whose outer guard covers it, or another supervisor.
var ErrSupervised = errors.New("another seccomp listener already watches this process")

// install installs the filter for r on the calling thread, or with
// allThreads on every thread of this process (TSYNC: a secure router
// checks that each is under it before it enrolls the program), and returns
// the listener. With waitKillable, a trapped call that the guard has
// received waits for its answer even when a signal comes (Go programs get
// one every 10 ms to preempt their goroutines): only a fatal signal ends
// the wait. The calling thread must stay locked to its goroutine: it execs
// the program.
func install(allThreads bool, r rules, waitKillable bool) (int, error) {
	if err := allowFilters(); err != nil {
		return -1, err
	}
	prog := filter(r)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	if allThreads {
		flags |= unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH // Linux 5.7
	}
	if waitKillable {
		flags |= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	switch errno {
	case 0:
		return int(fd), nil
	case unix.EBUSY:
		return -1, ErrSupervised
	case unix.EACCES:
		return -1, errors.New("install the seccomp filter: permission denied (needs no_new_privs or CAP_SYS_ADMIN)")
	case unix.EINVAL:
		if waitKillable {
			// Nothing is installed: the caller may try again without.
			return -1, ErrNoWaitKillable
		}
		return -1, fmt.Errorf("install the seccomp filter: %v (the kernel lacks seccomp user notification with TSYNC, Linux 5.7)", errno)
	case unix.ENOSYS:
		return -1, fmt.Errorf("install the seccomp filter: %v (the kernel lacks seccomp user notification with TSYNC, Linux 5.7)", errno)
	case unix.ESRCH:
		return -1, errors.New("install the seccomp filter: a thread of this process could not be put under it (TSYNC)")
	}
	return -1, fmt.Errorf("install the seccomp filter: %w", errno)
}

// allowFilters makes sure this thread may install a filter: it needs
// CAP_SYS_ADMIN or no_new_privs. Without the capability, no_new_privs is
// set, and stays for the program and everything it starts: setuid and
// file-capability programs it runs gain no privileges.
func allowFilters() error {
	if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err == nil && nnp == 1 {
		return nil
	}
	if hasCapability(unix.CAP_SYS_ADMIN) {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs (needed for a seccomp filter without CAP_SYS_ADMIN): %w", err)
	}
	return nil
}

// hasCapability reports whether capability c is in the calling thread's
// effective set.
func hasCapability(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}
