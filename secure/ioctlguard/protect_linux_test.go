package ioctlguard

import (
	"runtime"
	"strings"
	"testing"
)

// protectOnThread runs Protect on a goroutine of its own, whose thread
// (filtered or not) ends with it.
func protectOnThread(guard Command) error {
	done := make(chan error)
	go func() { done <- Protect(guard) }()
	return <-done
}

func TestProtectReportsGuardFailures(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("the filter knows x86 and Arm only")
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
	if err := Main(Command{}, "bogus"); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("Main with stage bogus = %v", err)
	}
}
