package router

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The /proc facts enrolment rests on, read about this test process and a
// child: no root needed.

func TestProcessFacts(t *testing.T) {
	pid := os.Getpid()
	start, err := processStart(pid)
	if err != nil || start == 0 {
		t.Fatalf("processStart(self) = %d, %v", start, err)
	}
	if err := sameProcess(pid, start); err != nil {
		t.Errorf("sameProcess(self): %v", err)
	}
	if err := sameProcess(pid, start+1); !errors.Is(err, errExited) {
		t.Errorf("sameProcess with another start time: %v, want errExited", err)
	}
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	childStart, _ := processStart(child.Process.Pid)
	child.Process.Kill()
	child.Wait()
	if _, err := processStart(child.Process.Pid); !errors.Is(err, errExited) {
		t.Errorf("processStart of a reaped child: %v, want errExited", err)
	}
	if err := sameProcess(child.Process.Pid, childStart); !errors.Is(err, errExited) {
		t.Errorf("sameProcess of a reaped child: %v, want errExited", err)
	}

	status := fmt.Sprintf("/proc/%d/status", pid)
	f, err := statusFields(status, "Seccomp", "TracerPid")
	if err != nil || f["TracerPid"] == "" {
		t.Fatalf("statusFields: %v, %v", f, err)
	}
	if _, err := statusFields(status, "NoSuchField"); err == nil || !strings.Contains(err.Error(), "no NoSuchField line") {
		t.Errorf("a missing field: %v", err)
	}
	if _, err := statusFields("/proc/0/status", "Seccomp"); !errors.Is(err, errExited) {
		t.Errorf("status of no process: %v, want errExited", err)
	}
	if f["Seccomp"] != seccompFilter {
		if err := checkFiltered(status); err == nil || !strings.Contains(err.Error(), "not under a seccomp filter") {
			t.Errorf("checkFiltered of a process under no filter: %v", err)
		}
		if err := checkThreadsUnderFilter(pid); err == nil {
			t.Error("checkThreadsUnderFilter of a process under no filter passed")
		}
	}
	if err := checkThreadsUnderFilter(child.Process.Pid); !errors.Is(err, errExited) {
		t.Errorf("checkThreadsUnderFilter of a reaped child: %v", err)
	}
	ns, err := netnsOf(pid)
	if own, _ := namespaceInode("/proc/self/ns/net"); err != nil || ns != own {
		t.Errorf("netnsOf(self) = %d, %v; want %d", ns, err, own)
	}
}

func TestDescriptorFacts(t *testing.T) {
	pid := os.Getpid()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if link, err := fdLink(pid, int(r.Fd())); err != nil || !strings.HasPrefix(link, "pipe:") || isSeccompListener(link) {
		t.Errorf("fdLink of a pipe: %q, %v", link, err)
	}
	for _, link := range []string{"anon_inode:[seccomp notify]", "anon_inode:seccomp notify"} {
		if !isSeccompListener(link) {
			t.Errorf("%q is a seccomp listener", link)
		}
	}
	dup, err := unix.Dup(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dup)
	if same, err := sameFile(pid, int(r.Fd()), pid, dup); err != nil || !same {
		t.Errorf("sameFile of a descriptor and its dup: %v, %v", same, err)
	}
	if same, err := sameFile(pid, int(r.Fd()), pid, int(w.Fd())); err != nil || same {
		t.Errorf("sameFile of a pipe's two ends: %v, %v", same, err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	if got, err := pidfdPID(pidfd); err != nil || got != pid {
		t.Errorf("pidfdPID(self) = %d, %v", got, err)
	}
	if _, err := pidfdPID(int(r.Fd())); err == nil {
		t.Error("pidfdPID of a pipe passed")
	}
}

// TestTrustedBinary: the router's own binary is trusted, by identity or
// by content (a copy); another program is not.
func TestTrustedBinary(t *testing.T) {
	b, err := newTrustedBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.runs(os.Getpid()); err != nil {
		t.Errorf("the router's own process: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "slim")
	if err := os.WriteFile(copied, data, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(path string, args ...string) int {
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), trustCopyEnv+"=1")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
		// Until it execs, the child runs this very binary.
		want, _ := exec.LookPath(path)
		want, _ = filepath.EvalSymlinks(want)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)); exe == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not start", path)
			}
		}
		return cmd.Process.Pid
	}
	copyPID := run(copied, "-test.run=^TestTrustedBinaryCopy$")
	if err := b.runs(copyPID); err != nil {
		t.Errorf("a copy of the router's binary: %v", err)
	}
	sleepPID := run("sleep", "30")
	if err := b.runs(sleepPID); err == nil || !strings.Contains(err.Error(), "does not run this router's slim binary") {
		t.Errorf("another program: %v", err)
	}
}

// trustCopyEnv makes TestTrustedBinaryCopy the copy TestTrustedBinary
// looks at: it waits until its stdin closes.
const trustCopyEnv = "SLIM_TEST_TRUST_COPY"

func TestTrustedBinaryCopy(t *testing.T) {
	if os.Getenv(trustCopyEnv) != "" {
		io.Copy(io.Discard, os.Stdin)
	}
}
