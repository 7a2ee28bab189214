package ioctlguard

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// protectOnThread runs Protect on a goroutine of its own, whose thread
// (filtered or not) ends with it.
func protectOnThread(guard Command) error {
	done := make(chan error)
	go func() {
		p, err := Protect(guard, Options{Ioctls: true})
		if p != nil {
			p.Close()
		}
		done <- err
	}()
	return <-done
}

// protectChildEnv marks the test process that runs Protect: Protect puts
// every thread of its process under the filter, so the test runs it in a
// child, not in the process that runs the other tests.
const protectChildEnv = "SLIM_TEST_PROTECT_CHILD"

func TestProtectReportsGuardFailures(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the filter knows x86 and Arm only")
	}
	if os.Getenv(protectChildEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestProtectReportsGuardFailures$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), protectChildEnv+"=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	tests := []struct {
		guard Command
		want  string
	}{
		{Command{Path: "/nonexistent/slim"}, "start the ioctl guard (/nonexistent/slim)"},
		{Command{Path: "/bin/sh", Args: []string{"-c", "exit 3"}}, "exit status 3"},
		{Command{Path: "/bin/sh", Args: []string{"-c", "echo no way >&3; exit 1"}}, "no way"},
		{Command{Path: "/bin/true"}, "the ioctl guard exited before it was ready"},
	}
	for _, tt := range tests {
		err := protectOnThread(tt.guard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Protect(%v) = %v, want an error with %q", tt.guard, err, tt.want)
		}
	}
}

func TestMainRefusesUnknownStage(t *testing.T) {
	if err := Main(Command{}, "bogus", nil); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("Main with stage bogus = %v", err)
	}
}
