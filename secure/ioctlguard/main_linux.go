package ioctlguard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/seccompnotif"
)

// SocketHandler answers the notifications of the trapped system calls
// other than ioctls (Options.Traps). Handle must answer n, at once or
// later from any goroutine, and call answered then. Close is called once
// no process is left under the filter.
type SocketHandler interface {
	Handle(n seccompnotif.Notif, answered func())
	Close()
}

// SocketSetup makes the socket handler of a filter with traps from what
// Protect handed over: the listener, Options.Config and Options.Files. It
// returns the handler and a warning line for slim exec to show ("" when
// all is well); with a nil handler the guard lets the kernel run every
// trapped call.
type SocketSetup func(listener int, config []byte, files []int) (SocketHandler, string)

// Main runs one stage of the guard program, which Protect started through
// guard with the stage as last argument and its socket as fd 3; sockets
// makes the handler of socket calls when the filter traps them.
func Main(guard Command, stage string, sockets SocketSetup) error {
	switch stage {
	case stageDetach:
		return detach(guard)
	case stageServe:
		return serveStage(guard, sockets)
	case stageBackstop:
		return backstopStage()
	}
	return fmt.Errorf("unknown ioctl guard stage %q", stage)
}

// detach starts the guard in a session of its own and returns: once this
// process exits, the guard is nobody's child but the init's (or a
// subreaper's) of its PID namespace.
func detach(guard Command) error {
	runtime.LockOSThread() // the guard is started from this thread, with its bounding set
	dropNetworkCapabilities()
	cmd := guard.command(stageServe, os.NewFile(guardFd, "ioctl guard socket"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		err = fmt.Errorf("start the ioctl guard: %w", err)
		unix.Write(guardFd, []byte(err.Error()))
		return err
	}
	return nil
}

// startBackstop starts the process that takes over should this guard die
// (a program whose trapped calls failed would be broken, not just slower).
func (g *guard) startBackstop(guardCmd Command) error {
	table, err := newInflight()
	if err != nil {
		return err
	}
	if err := startBackstop(guardCmd, g.listener, table); err != nil {
		return err
	}
	g.inflight = table
	return nil
}

// networkCapabilities are what the guard never needs: it performs socket
// calls for the program (binds, options on host sockets), and must not be
// able to do there what the program itself could not (a program that
// dropped root, a container with a user namespace of its own).
var networkCapabilities = []uintptr{unix.CAP_NET_ADMIN, unix.CAP_NET_BIND_SERVICE, unix.CAP_NET_RAW}

// dropNetworkCapabilities takes networkCapabilities out of this thread's
// bounding set, so that the guard started from it never has them. Without
// CAP_SETPCAP (not root) there is nothing to drop.
func dropNetworkCapabilities() {
	for _, c := range networkCapabilities {
		unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0)
	}
}

// serveStage receives the listener, checks that it can do its work, says
// so ("ok" or why not) and serves.
func serveStage(guardCmd Command, sockets SocketSetup) error {
	h, err := receive(guardFd)
	if err != nil {
		return err
	}
	g, err := newGuard(h.listener, h.pid, h.probe)
	warning := ""
	if err == nil && h.traps > 0 && sockets != nil {
		g.sockets, warning = sockets(h.listener, h.config, h.files)
		err = g.startBackstop(guardCmd)
	} else {
		closeAll(h.files)
	}
	if err == nil {
		err = sayReady(guardFd, warning)
	}
	if err != nil {
		unix.Write(guardFd, []byte("ioctl guard: "+err.Error()))
	}
	unix.Close(guardFd)
	if err != nil {
		return err
	}
	return g.serve()
}

// sayReady tells Protect that the guard serves, with a pidfd of itself
// (slim exec shows it to the router, which checks that this process holds
// the program's listener) and the socket handler's warning, if any.
func sayReady(conn int, warning string) error {
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return fmt.Errorf("pidfd of the guard: %w", err)
	}
	defer unix.Close(pidfd)
	msg := "ok"
	if warning != "" {
		msg += "\n" + warning
	}
	if err := unix.Sendmsg(conn, []byte(msg), unix.UnixRights(pidfd), nil, unix.MSG_NOSIGNAL); err != nil {
		return fmt.Errorf("say ready: %w", err)
	}
	return nil
}

// handover is what Protect sends the guard.
type handover struct {
	listener int    // the seccomp listener
	probe    int    // its number in the protected process
	pid      int    // the protected process
	traps    int    // how many traps the filter has besides the ioctls
	config   []byte // for the socket handler
	files    []int  // for the socket handler
}

// receive takes the listener from Protect, with its fd number there, the
// PID of the process that sent it, and what the socket handler gets.
func receive(conn int) (handover, error) {
	buf := make([]byte, 8+maxConfig+1)
	oob := make([]byte, unix.CmsgSpace(4*(1+MaxFiles)))
	n, oobn, _, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return handover{}, fmt.Errorf("receive the seccomp listener: %w", err)
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
		fds, _ = unix.ParseUnixRights(&msgs[0])
	}
	switch {
	case n == 0:
		closeAll(fds)
		return handover{}, errors.New("receive the seccomp listener: the protected process went away")
	case n < 8 || n > 8+maxConfig || len(fds) == 0:
		closeAll(fds)
		return handover{}, fmt.Errorf("receive the seccomp listener: malformed hand-over (%d bytes, %d descriptors)", n, len(fds))
	}
	cred, err := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		closeAll(fds)
		return handover{}, fmt.Errorf("receive the seccomp listener: sender: %w", err)
	}
	return handover{
		listener: fds[0], files: fds[1:], pid: int(cred.Pid),
		probe:  int(binary.LittleEndian.Uint32(buf)),
		traps:  int(binary.LittleEndian.Uint32(buf[4:])),
		config: buf[8:n],
	}, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// newGuard prepares the guard for the process pid, which holds fd probe.
func newGuard(listener, pid, probe int) (*guard, error) {
	// Not dumpable: a program under the filter, although run by the same
	// user, may then not take the listener from the guard (pidfd_getfd,
	// ptrace) without CAP_SYS_PTRACE.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("make the guard undumpable: %w", err)
	}
	netns, err := ownNetns()
	if err != nil {
		return nil, err
	}
	if err := probeAccess(pid, probe); err != nil {
		return nil, err
	}
	g := &guard{listener: listener, netns: netns}
	if os.Getenv("SLIM_DEBUG") != "" {
		g.debug = os.Stderr
	}
	// The guard answers at once: the caller and the guard take turns on
	// one CPU (a round trip of ~2 µs here against ~55 µs waking each other
	// across CPUs). The flag is the filter's: the backstop has it too.
	// Kernels before 6.6 refuse it; the answers come all the same.
	if err := seccompnotif.SetSyncWakeUp(listener); err != nil && g.debug != nil {
		fmt.Fprintf(g.debug, "slim ioctl guard: synchronous wake-ups (Linux 6.6): %v\n", err)
	}
	return g, nil
}

// ownNetns returns the cookie of the guard's network namespace.
func ownNetns() (uint64, error) {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(s)
	cookie, err := unix.GetsockoptUint64(s, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return 0, fmt.Errorf("read the network namespace cookie (SO_NETNS_COOKIE, Linux 5.14): %w", err)
	}
	return cookie, nil
}

// probeAccess checks that the guard may take files from process pid and
// open its memory, as it will for every guarded ioctl.
func probeAccess(pid, fd int) error {
	const need = "the guard needs ptrace access to the program: the same user, and kernel.yama.ptrace_scope 0 or CAP_SYS_PTRACE"
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open(%d): %w", pid, err)
	}
	defer unix.Close(pidfd)
	dup, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return fmt.Errorf("pidfd_getfd on process %d: %w (%s)", pid, err, need)
	}
	unix.Close(dup)
	mem, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", pid), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w (%s)", err, need)
	}
	return mem.Close()
}
