package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// runCapturingStdout calls run and returns its exit code and everything
// written to stdout and stderr. parseFlags prints --help to os.Stdout
// directly, so os.Stdout is redirected too.
func runCapturingStdout(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	realStdout := os.Stdout
	os.Stdout = w
	captured := make(chan string)
	go func() {
		data, _ := io.ReadAll(r)
		captured <- string(data)
	}()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	os.Stdout = realStdout
	w.Close()
	return code, stdout.String() + <-captured, stderr.String()
}

func TestEverySubcommandAnswersHelp(t *testing.T) {
	for _, name := range []string{"router", "exec", "top", "lab", "bench", "version"} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := runCapturingStdout(t, name, "--help")
			if code != 0 {
				t.Errorf("slim %s --help exited %d, want 0; stderr: %s", name, code, stderr)
			}
			if want := "Usage: slim " + name; !strings.Contains(stdout, want) {
				t.Errorf("slim %s --help printed %q, want it to contain %q", name, stdout, want)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, stderr := runCapturingStdout(t, "frobnicate")
	if code != 2 {
		t.Errorf("slim frobnicate exited %d, want 2", code)
	}
	if !strings.Contains(stderr, "unknown command") {
		t.Errorf("stderr = %q, want it to contain %q", stderr, "unknown command")
	}
}

// TestTopWithoutTerminalSaysSo: the dashboard needs a terminal; without
// one slim top points to --once and --json instead of failing obscurely.
func TestTopWithoutTerminalSaysSo(t *testing.T) {
	code, _, stderr := runCapturingStdout(t, "top", "--control", "/nonexistent/control.sock")
	if code != 1 || !strings.Contains(stderr, "--once") {
		t.Errorf("slim top without a terminal: exit %d, stderr %q; want exit 1 pointing to --once", code, stderr)
	}
}

// TestTopOnceUnreachableRouter: --once against no router fails in one line
// naming the socket.
func TestTopOnceUnreachableRouter(t *testing.T) {
	code, _, stderr := runCapturingStdout(t, "top", "--once", "--control", "/nonexistent/control.sock")
	if code != 1 || !strings.Contains(stderr, "/nonexistent/control.sock") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("slim top --once: exit %d, stderr %q", code, stderr)
	}
}
