package launch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// In secure mode the router answers POOL and LISTEN only to a process of
// the enrolled program (in its container's cgroup, under its filter), and
// tells who asks by the process that made the connection. The supervisor
// is no such process: slim exec makes its router connections before it
// becomes the program. A router restart ends them; so that the supervisor
// can connect again, as a preloaded shim does from inside its program,
// slim exec also leaves a dialer behind: a small process it starts once
// enrolled (so in the cgroup and under the filter), detached (nobody's
// child in the program's tree), that makes a router connection whenever
// the supervisor asks on their link and passes it over, and exits when the
// program does or the supervisor goes.

// DialerCommand is the hidden subcommand that runs the dialer: slim exec
// starts `slim __router-dialer detach` with the link as fd 3.
const DialerCommand = "__router-dialer"

// Stages of the dialer program.
const (
	dialerDetach = "detach" // starts the dialer in a session of its own, returns
	dialerServe  = "serve"
	dialerLinkFd = 3
)

// dialerProgram is this binary, which main dispatches DialerCommand of.
const dialerProgram = "/proc/self/exe"

// newDialerLink makes the link between the supervisor (the first end,
// handed over with the router connections) and the dialer (the second).
func newDialerLink() ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
}

// startDialer starts the dialer for this process (the program to be) and
// the router at routerSock, with its end of the link (which it closes),
// and waits until it is detached.
func startDialer(link int, routerSock string) error {
	f := os.NewFile(uintptr(link), "router dialer link")
	defer f.Close()
	cmd := exec.Command(dialerProgram, DialerCommand, dialerDetach, routerSock, strconv.Itoa(os.Getpid()))
	cmd.ExtraFiles = []*os.File{f}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("start the router dialer: %w: %s", err, out)
	}
	return nil
}

// DialerMain runs a stage of the dialer: args are the stage, the router
// socket and the program's process ID.
func DialerMain(args []string) error {
	if len(args) != 3 {
		return errors.New("usage: " + DialerCommand + " detach|serve ROUTER_SOCK PID")
	}
	switch args[0] {
	case dialerDetach:
		cmd := exec.Command(dialerProgram, DialerCommand, dialerServe, args[1], args[2])
		cmd.ExtraFiles = []*os.File{os.NewFile(dialerLinkFd, "router dialer link")}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		return cmd.Start()
	case dialerServe:
		pid, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		return serveDialer(dialerLinkFd, args[1], pid)
	}
	return fmt.Errorf("unknown %s stage %q", DialerCommand, args[0])
}

// serveDialer answers each message on link with a new router connection,
// until the link closes or process pid (the program) exits.
func serveDialer(link int, routerSock string, pid int) error {
	program, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("watch the program (process %d): %w", pid, err)
	}
	fds := []unix.PollFd{{Fd: int32(link), Events: unix.POLLIN}, {Fd: int32(program), Events: unix.POLLIN}}
	buf := make([]byte, 16)
	for {
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return err
		}
		if fds[1].Revents != 0 || fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			return nil // the program exited, or the supervisor is gone
		}
		if fds[0].Revents&unix.POLLIN == 0 {
			continue
		}
		if n, _, err := unix.Recvfrom(link, buf, unix.MSG_DONTWAIT); err != nil || n == 0 {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			return nil
		}
		answerDial(link, routerSock)
	}
}

// answerDial connects to the router and passes the connection over link,
// or the reason it could not.
func answerDial(link int, routerSock string) {
	conns := dialRouter(routerSock, 1)
	if len(conns) == 0 {
		unix.Sendmsg(link, []byte("connect to the router failed"), nil, nil, unix.MSG_NOSIGNAL)
		return
	}
	unix.Sendmsg(link, []byte{0}, unix.UnixRights(conns[0]), nil, unix.MSG_NOSIGNAL)
	unix.Close(conns[0])
}
