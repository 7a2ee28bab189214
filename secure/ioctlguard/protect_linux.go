package ioctlguard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
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

// Options say what the filter traps and what the guard gets.
type Options struct {
	// Ioctls guards the socket ioctls (secure mode).
	Ioctls bool
	// Traps are more system calls, answered by the guard's socket
	// handler (Main's SocketSetup), which gets Config and Files.
	Traps []Trap
	// Config is handed to the socket handler as is.
	Config []byte
	// Files are descriptors handed to the guard for the socket handler
	// (connections to the router made by this process); at most
	// MaxFiles. Protect does not close them.
	Files []int
}

// MaxFiles bounds Options.Files.
const MaxFiles = 8

// maxConfig bounds Options.Config.
const maxConfig = 16 << 10

// Protection is what Protect leaves the caller: the filter's listener
// and a pidfd of the guard that holds it too, which a secure router checks
// before it enrolls the program (docs/secure.md, "Enrolment"). Both are
// close-on-exec; Close releases them.
type Protection struct {
	Listener int // the seccomp listener, as installed here
	Guard    int // pidfd of the guard process
	// Warning is what the socket handler could not do (one line), or "".
	Warning string
}

// Close closes both descriptors.
func (p *Protection) Close() {
	unix.Close(p.Listener)
	unix.Close(p.Guard)
}

// Protect puts this process (every thread of it) under the filter, with a
// guard process answering for it. It locks the calling goroutine to its
// OS thread for good, so that the caller execs the program from the
// thread that installed the filter.
//
// The guard is started before the filter exists, so it is not under it;
// it is no child of this process either (a short-lived intermediate starts
// it in a session of its own), so a program that waits for all its
// children does not see it.
//
// With traps, the filter wants SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV:
// ErrNoWaitKillable says the kernel lacks it, and then nothing is
// installed.
func Protect(guard Command, opts Options) (*Protection, error) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return nil, fmt.Errorf("not available on %s (the filter knows x86 and Arm system calls only)", runtime.GOARCH)
	}
	if len(opts.Files) > MaxFiles || len(opts.Config) > maxConfig {
		return nil, fmt.Errorf("too much for the guard: %d files (at most %d), %d bytes of configuration (at most %d)", len(opts.Files), MaxFiles, len(opts.Config), maxConfig)
	}
	runtime.LockOSThread()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair for the ioctl guard: %w", err)
	}
	conn := fds[0]
	defer unix.Close(conn)
	if err := launch(guard, conn, fds[1]); err != nil {
		return nil, err
	}
	listener, err := install(true, rules{ioctls: opts.Ioctls, traps: opts.Traps}, len(opts.Traps) > 0)
	if err != nil {
		return nil, err
	}
	pidfd, warning, err := handOver(conn, listener, opts)
	if err != nil {
		unix.Close(listener)
		return nil, err
	}
	return &Protection{Listener: listener, Guard: pidfd, Warning: warning}, nil
}

// launch runs the detach stage, giving it theirs, which it closes here.
func launch(guard Command, conn, theirs int) error {
	sock := os.NewFile(uintptr(theirs), "ioctl guard socket")
	defer sock.Close()
	if err := guard.command(stageDetach, sock).Run(); err != nil {
		if msg, fd := pending(conn); msg != "" {
			closeIfOpen(fd)
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
// access check), the socket handler's configuration and files, and waits
// for the guard to say it is ready, with a pidfd of itself, which it
// returns with the socket handler's warning, if any.
func handOver(conn, listener int, opts Options) (int, string, error) {
	msg := binary.LittleEndian.AppendUint32(nil, uint32(listener))
	msg = binary.LittleEndian.AppendUint32(msg, uint32(len(opts.Traps)))
	msg = append(msg, opts.Config...)
	err := unix.Sendmsg(conn, msg, unix.UnixRights(append([]int{listener}, opts.Files...)...), nil, unix.MSG_NOSIGNAL)
	if err == unix.EPIPE || err == unix.ECONNRESET {
		return -1, "", errGuardExited
	}
	if err != nil {
		return -1, "", fmt.Errorf("hand the seccomp listener to the ioctl guard: %w", err)
	}
	if err := waitReadable(conn, handOverTimeout); err != nil {
		return -1, "", err
	}
	verdict, pidfd := pending(conn)
	ready, warning, _ := strings.Cut(verdict, "\n")
	switch {
	case ready == "ok" && pidfd >= 0:
		return pidfd, warning, nil
	case ready == "ok":
		return -1, "", errors.New("the ioctl guard said it was ready but sent no pidfd of itself")
	case verdict == "":
		closeIfOpen(pidfd)
		return -1, "", errGuardExited
	}
	closeIfOpen(pidfd)
	return -1, "", errors.New(verdict)
}

// waitReadable waits until conn has a message, or timeout.
func waitReadable(conn int, timeout time.Duration) error {
	fds := []unix.PollFd{{Fd: int32(conn), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for {
		n, err := unix.Poll(fds, int(max(time.Until(deadline).Milliseconds(), 0)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for the ioctl guard: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("the ioctl guard did not answer within %v", timeout)
		}
		return nil
	}
}

// pending reads the guard's message waiting on conn, if any, and the
// descriptor that came with it (-1 if none).
func pending(conn int) (string, int) {
	buf := make([]byte, 1024)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil || n <= 0 {
		return "", -1
	}
	fd := -1
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
		if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
			fd = fds[0]
		}
	}
	return string(buf[:n]), fd
}

func closeIfOpen(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
