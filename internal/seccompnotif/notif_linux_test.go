package seccompnotif

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// trapOnThisThread installs, on the calling thread only, a filter that
// sends system call nr to a listener, and returns the listener. The
// thread keeps the filter until it exits: lock it and let it die.
func trapOnThisThread(nr uint32) (int, error) {
	program := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: nr},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_USER_NOTIF},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(program)), Filter: &program[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, fmt.Errorf("no_new_privs: %w", err)
	}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return -1, fmt.Errorf("seccomp filter with a listener: %w", errno)
	}
	return int(fd), nil
}

// TestSyncWakeUp sets synchronous wake-ups on a listener (the kernel
// refused the flags when they were passed by pointer, and the supervisor
// ran with cross-CPU wake-ups without saying so) and answers a trapped
// call through it.
func TestSyncWakeUp(t *testing.T) {
	if !kernelAtLeast(t, 6, 6) {
		t.Skip("kernel feature missing: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (Linux 6.6)")
	}
	listeners := make(chan int, 1)
	errs := make(chan error, 1)
	results := make(chan uintptr, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread and its filter end with the goroutine
		listener, err := trapOnThisThread(unix.SYS_GETPPID)
		if err != nil {
			errs <- err
			return
		}
		listeners <- listener
		r, _, _ := unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		results <- r
	}()
	var listener int
	select {
	case listener = <-listeners:
	case err := <-errs:
		t.Fatal(err)
	}
	defer unix.Close(listener)
	if err := SetSyncWakeUp(listener); err != nil {
		t.Fatalf("SetSyncWakeUp on Linux 6.6 or later: %v", err)
	}
	n, err := Recv(listener)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	if n.Data.Nr != unix.SYS_GETPPID {
		t.Fatalf("trapped call %d, want getppid (%d)", n.Data.Nr, unix.SYS_GETPPID)
	}
	if err := Return(listener, n.ID, 4242, 0); err != nil {
		t.Fatalf("Return: %v", err)
	}
	if got := <-results; got != 4242 {
		t.Fatalf("the trapped getppid returned %d, want the answer 4242", got)
	}
}

// kernelAtLeast reports whether the running kernel is major.minor or later.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatalf("uname: %v", err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("kernel release %q: no major.minor", release)
	}
	gotMajor, err1 := strconv.Atoi(parts[0])
	gotMinor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		t.Fatalf("kernel release %q: no major.minor", release)
	}
	return gotMajor > major || gotMajor == major && gotMinor >= minor
}
