package ioctlguard

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"

	"golang.org/x/sys/unix"
)

// stageBackstop is the guard's backstop: a process that holds the
// listener too and takes over if the guard dies. Without it the filter's
// listener would be closed with the guard, and every trapped call of the
// program would fail (ENOSYS); with it they proceed in the kernel (socket
// calls: the program uses the overlay) or are guarded as before (ioctls).
const stageBackstop = "backstop"

// Where the backstop finds what the guard hands it.
const (
	backstopListener = 3
	backstopTable    = 4
	backstopGuard    = 5 // a pidfd of the guard
)

// startBackstop starts the backstop of the guard (this process) with the
// listener and the in-flight table.
func startBackstop(guardCmd Command, listener int, table *inflight) error {
	self, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return err
	}
	files := []*os.File{
		os.NewFile(uintptr(dupCloexec(listener)), "seccomp listener"),
		os.NewFile(uintptr(dupCloexec(table.fd)), "in-flight table"),
		os.NewFile(uintptr(self), "guard pidfd"),
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	cmd := exec.Command(guardCmd.Path, append(slices.Clone(guardCmd.Args), stageBackstop)...)
	cmd.ExtraFiles = files
	cmd.Env = []string{}
	if v := os.Getenv("SLIM_DEBUG"); v != "" {
		cmd.Env = append(cmd.Env, "SLIM_DEBUG="+v)
		cmd.Stderr = os.Stderr
	}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the guard's backstop: %w", err)
	}
	go cmd.Wait() // reaped when it exits (after the guard, usually)
	return nil
}

func dupCloexec(fd int) int {
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return d
}

// backstopStage waits for the guard to die, then lets the kernel run what
// the guard left unanswered, and serves as a guard without socket handler.
// It ends when no process is left under the filter.
func backstopStage() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return err
	}
	fds := []unix.PollFd{{Fd: backstopGuard, Events: unix.POLLIN}, {Fd: backstopListener}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("backstop: %w", err)
		}
		if fds[1].Revents&(unix.POLLHUP|unix.POLLNVAL) != 0 {
			return nil // the program is gone
		}
		if fds[0].Revents != 0 {
			break // the guard is gone
		}
	}
	table, err := mapInflight(backstopTable)
	if err != nil {
		return err
	}
	released := table.release(backstopListener)
	netns, err := ownNetns()
	if err != nil {
		return err
	}
	g := &guard{listener: backstopListener, netns: netns}
	if os.Getenv("SLIM_DEBUG") != "" {
		g.debug = os.Stderr
		fmt.Fprintf(os.Stderr, "slim guard backstop: the guard is gone; %d calls it had not answered proceed, socket calls proceed from now on\n", released)
	}
	err = g.serve()
	if errors.Is(err, unix.EBADF) {
		return nil
	}
	return err
}
