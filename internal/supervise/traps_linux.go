package supervise

import (
	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/secure/ioctlguard"
)

// call is a socket call the supervisor handles.
type call int

const (
	callConnect call = iota + 1
	callListen
	callAccept
	callAccept4
	callGetsockname
	callGetpeername
	callEpollCreate
	callDup // dup, dup2, dup3, fcntl F_DUPFD(_CLOEXEC)
)

// fcntl commands that duplicate a descriptor.
var dupCommands = []uint32{unix.F_DUPFD, unix.F_DUPFD_CLOEXEC}

// Where the filter looks at an argument: connect's address length, fcntl's
// command.
const (
	connectLenArg = 3
	fcntlCmdArg   = 2
)

// sockaddrInSize is sizeof(struct sockaddr_in): the filter traps connect
// only with that address length or sockaddr_in6's (an AF_INET6 socket's,
// which may connect to a v4-mapped address), so other connects (unix
// sockets …) cost nothing.
const sockaddrInSize = 16

// entry is one system call of one architecture.
type entry struct {
	arch uint32
	nr   uint32
	call call
}

// entries are the calls trapped on x86-64 and arm64 (the 64-bit entry
// points only: a program that makes 32-bit socket calls is not
// accelerated, which is all it loses).
var entries = []entry{
	{unix.AUDIT_ARCH_X86_64, 42, callConnect},
	{unix.AUDIT_ARCH_X86_64, 50, callListen},
	{unix.AUDIT_ARCH_X86_64, 43, callAccept},
	{unix.AUDIT_ARCH_X86_64, 288, callAccept4},
	{unix.AUDIT_ARCH_X86_64, 51, callGetsockname},
	{unix.AUDIT_ARCH_X86_64, 52, callGetpeername},
	{unix.AUDIT_ARCH_X86_64, 213, callEpollCreate},
	{unix.AUDIT_ARCH_X86_64, 291, callEpollCreate},
	{unix.AUDIT_ARCH_X86_64, 32, callDup},
	{unix.AUDIT_ARCH_X86_64, 33, callDup},
	{unix.AUDIT_ARCH_X86_64, 292, callDup},
	{unix.AUDIT_ARCH_X86_64, 72, callDup},
	{unix.AUDIT_ARCH_AARCH64, 203, callConnect},
	{unix.AUDIT_ARCH_AARCH64, 201, callListen},
	{unix.AUDIT_ARCH_AARCH64, 202, callAccept},
	{unix.AUDIT_ARCH_AARCH64, 242, callAccept4},
	{unix.AUDIT_ARCH_AARCH64, 204, callGetsockname},
	{unix.AUDIT_ARCH_AARCH64, 205, callGetpeername},
	{unix.AUDIT_ARCH_AARCH64, 20, callEpollCreate},
	{unix.AUDIT_ARCH_AARCH64, 23, callDup},
	{unix.AUDIT_ARCH_AARCH64, 24, callDup},
	{unix.AUDIT_ARCH_AARCH64, 25, callDup},
}

// Traps are the system calls slim exec's filter sends to the supervisor.
// In secure mode, the router's cgroup programs answer getsockname and
// getpeername of host sockets, so they are not trapped.
func Traps(secure bool) []ioctlguard.Trap {
	var traps []ioctlguard.Trap
	for _, e := range entries {
		if secure && (e.call == callGetsockname || e.call == callGetpeername) {
			continue
		}
		t := ioctlguard.Trap{Arch: e.arch, Nr: e.nr}
		switch {
		case e.call == callConnect:
			t.Arg, t.Values = connectLenArg, []uint32{sockaddrInSize, sockaddrInet6Size}
		case e.call == callDup && isFcntl(e):
			t.Arg, t.Values = fcntlCmdArg, dupCommands
		}
		traps = append(traps, t)
	}
	return traps
}

// lookup names the call behind a notification (0: none of ours).
func lookup(arch uint32, nr int32) call {
	for _, e := range entries {
		if e.arch == arch && int32(e.nr) == nr {
			return e.call
		}
	}
	return 0
}

func isFcntl(e entry) bool {
	return (e.arch == unix.AUDIT_ARCH_X86_64 && e.nr == 72) || (e.arch == unix.AUDIT_ARCH_AARCH64 && e.nr == 25)
}
