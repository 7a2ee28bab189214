package router

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/testenv"
)

// The enrolment checks against real processes. The test binary plays the
// router's binary: children that run it are "slim exec" and "the guard".

// trustChildEnv names what a child of this test binary does.
const trustChildEnv = "SLIM_TEST_TRUST_CHILD"

// trustChild is one helper process; it lives until its stdin closes.
type trustChild struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	pid      int
	listener int // fd number of its seccomp listener
	holder   int // PID of the process it gave the listener to
}

// startTrustChild runs this test binary as a helper in role.
func startTrustChild(t *testing.T, role string) *trustChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestVerifyGuarded$")
	cmd.Env = append(os.Environ(), trustChildEnv+"="+role)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &trustChild{cmd: cmd, stdin: stdin, pid: cmd.Process.Pid}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if _, perr := fmt.Sscanf(line, "READY %d %d", &c.listener, &c.holder); err != nil || perr != nil {
		t.Fatalf("helper %s: %q, %v", role, line, err)
	}
	return c
}

// TestVerifyGuarded: the router enrolls slim exec under its guard, and
// nothing that only looks like it.
func TestVerifyGuarded(t *testing.T) {
	if role := os.Getenv(trustChildEnv); role != "" {
		trustChildMain(role)
		return
	}
	testenv.Integration(t)
	b, err := newTrustedBinary()
	if err != nil {
		t.Fatal(err)
	}
	guarded := startTrustChild(t, "guarded")
	oneThread := startTrustChild(t, "one-thread")
	other := startTrustChild(t, "guarded") // another filter, another listener
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	for _, c := range []struct {
		name     string
		caller   int
		listener int
		guard    int
		want     string // "" for enrolled
	}{
		{"slim exec under its guard", guarded.pid, guarded.listener, guarded.holder, ""},
		{"one thread under the filter", oneThread.pid, oneThread.listener, oneThread.holder, "not under a seccomp filter"},
		{"a guard holding another listener", guarded.pid, guarded.listener, other.holder, "does not hold the program's seccomp listener"},
		{"the listener's number wrong", guarded.pid, 0, guarded.holder, "is not a seccomp listener"},
		{"another binary", sleeper.Process.Pid, 0, guarded.holder, "does not run this router's slim binary"},
		{"another binary as the guard", guarded.pid, guarded.listener, sleeper.Process.Pid, "does not run this router's slim binary"},
	} {
		err := verify(t, b, c.caller, c.listener, c.guard)
		t.Logf("%s: %v", c.name, err)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}

// TestVerifyGuardedRefusesTraced: a slim exec that another process
// traces could be made to do anything; it is not enrolled.
func TestVerifyGuardedRefusesTraced(t *testing.T) {
	testenv.Integration(t)
	b, err := newTrustedBinary()
	if err != nil {
		t.Fatal(err)
	}
	traced := startTrustChild(t, "guarded")
	seized := make(chan error)
	go func() {
		runtime.LockOSThread() // the tracer is this thread: it ends with the goroutine, and the trace
		seized <- unix.PtraceSeize(traced.pid)
		<-t.Context().Done()
	}()
	if err := <-seized; err != nil {
		t.Fatalf("PTRACE_SEIZE: %v", err)
	}
	err = verify(t, b, traced.pid, traced.listener, traced.holder)
	if err == nil || !strings.Contains(err.Error(), "traced by process") {
		t.Errorf("a traced slim exec: %v, want an error with %q", err, "traced by process")
	}
}

// verify runs verifyGuarded as the router would, with a pidfd of guard.
func verify(t *testing.T, b *trustedBinary, caller, listener, guard int) error {
	t.Helper()
	start, err := processStart(caller)
	if err != nil {
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(guard, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	return b.verifyGuarded(caller, start, listener, pidfd)
}

// trustChildMain is a helper process. "guarded": every thread under a
// filter with a listener, which a child ("holder") holds as fd 3, as the
// guard does; "one-thread": the same, with only one thread filtered.
// It prints "READY LISTENER HOLDER" and waits for stdin to close.
func trustChildMain(role string) {
	if role == "holder" {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	runtime.LockOSThread()
	listener, err := allowAllFilter(role == "guarded")
	if err != nil {
		fmt.Println("FAILED", err)
		os.Exit(1)
	}
	holder := exec.Command(os.Args[0], "-test.run=^TestVerifyGuarded$")
	holder.Env = append(os.Environ(), trustChildEnv+"=holder")
	holder.ExtraFiles = []*os.File{os.NewFile(uintptr(listener), "listener")}
	holder.Stdin = os.Stdin
	if err := holder.Start(); err != nil {
		fmt.Println("FAILED", err)
		os.Exit(1)
	}
	fmt.Printf("READY %d %d\n", listener, holder.Process.Pid)
	io.Copy(io.Discard, os.Stdin)
	holder.Wait()
	os.Exit(0)
}

// allowAllFilter installs a filter that allows everything, with a
// listener, on this thread or (TSYNC) every thread.
func allowAllFilter(allThreads bool) (int, error) {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, err
	}
	allow := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	prog := unix.SockFprog{Len: 1, Filter: &allow[0]}
	flags := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	if allThreads {
		flags |= unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(allow)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}
