package ioctlguard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Command starts this program again in the guard's role: Path with Args,
// then a stage argument that the program hands to Main.
type Command struct {
	Path string
	Args []string
}

// Stages of the guard program.
const (
	stageDetach = "detach" // start the guard in a session of its own, exit
	stageServe  = "serve"  // the guard
)

// guardFd is where the guard program finds its end of the socketpair.
const guardFd = 3

// handOverTimeout bounds the wait for the guard's first answer; starting
// it takes two process starts.
const handOverTimeout = 5 * time.Second

// errGuardExited says the guard went away before it took the listener.
var errGuardExited = errors.New("the ioctl guard exited before it was ready")

// Protect puts the calling thread under the filter, with a guard process
// answering for it. It locks the calling goroutine to its OS thread for
// good: the filter is that thread's, and passes to what it execs, so the
// caller must exec the program from the same goroutine.
//
// The guard is started before the filter exists, so it is not under it;
// it is no child of this process either (a short-lived intermediate starts
// it in a session of its own), so a program that waits for all its
// children does not see it.
func Protect(guard Command) error {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return fmt.Errorf("not available on %s (the filter knows x86 and Arm system calls only)", runtime.GOARCH)
	}
	runtime.LockOSThread()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socketpair for the ioctl guard: %w", err)
	}
	conn := fds[0]
	defer unix.Close(conn)
	if err := launch(guard, conn, fds[1]); err != nil {
		return err
	}
	listener, err := install()
	if err != nil {
		return err
	}
	defer unix.Close(listener)
	return handOver(conn, listener)
}

// launch runs the detach stage, giving it theirs, which it closes here.
func launch(guard Command, conn, theirs int) error {
	sock := os.NewFile(uintptr(theirs), "ioctl guard socket")
	defer sock.Close()
	if err := guard.command(stageDetach, sock).Run(); err != nil {
		if msg := pending(conn); msg != "" {
			return errors.New(msg)
		}
		return fmt.Errorf("start the ioctl guard (%s): %w", guard.Path, err)
	}
	return nil
}

// command prepares stage of the guard program with sock as fd 3, an
// empty environment but SLIM_DEBUG, / as working directory, and stderr
// only under SLIM_DEBUG.
func (c Command) command(stage string, sock *os.File) *exec.Cmd {
	cmd := exec.Command(c.Path, append(slices.Clone(c.Args), stage)...)
	cmd.ExtraFiles = []*os.File{sock}
	cmd.Env = []string{}
	if v := os.Getenv("SLIM_DEBUG"); v != "" {
		cmd.Env = append(cmd.Env, "SLIM_DEBUG="+v)
		cmd.Stderr = os.Stderr
	}
	cmd.Dir = "/"
	return cmd
}

// handOver sends the listener (and its number here, for the guard's
// access check) and waits for the guard to say it is ready.
func handOver(conn, listener int) error {
	msg := binary.LittleEndian.AppendUint32(nil, uint32(listener))
	err := unix.Sendmsg(conn, msg, unix.UnixRights(listener), nil, unix.MSG_NOSIGNAL)
	if err == unix.EPIPE || err == unix.ECONNRESET {
		return errGuardExited
	}
	if err != nil {
		return fmt.Errorf("hand the seccomp listener to the ioctl guard: %w", err)
	}
	fds := []unix.PollFd{{Fd: int32(conn), Events: unix.POLLIN}}
	deadline := time.Now().Add(handOverTimeout)
	for {
		n, err := unix.Poll(fds, int(max(time.Until(deadline).Milliseconds(), 0)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for the ioctl guard: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("the ioctl guard did not answer within %v", handOverTimeout)
		}
		break
	}
	switch verdict := pending(conn); verdict {
	case "ok":
		return nil
	case "":
		return errGuardExited
	default:
		return errors.New(verdict)
	}
}

// pending reads the guard's message waiting on conn, if any.
func pending(conn int) string {
	buf := make([]byte, 1024)
	n, _, err := unix.Recvfrom(conn, buf, unix.MSG_DONTWAIT)
	if err != nil || n <= 0 {
		return ""
	}
	return string(buf[:n])
}
