package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slimnet/slim/internal/testenv"

	prebuilt "github.com/slimnet/slim/embed"
	"github.com/slimnet/slim/internal/shimfile"
)

// TestExecEndToEnd builds slim and runs programs through slim exec.
func TestExecEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds slim; skipped with -short")
	}
	testenv.Tools(t, "go")
	goTool, _ := exec.LookPath("go")
	dir := t.TempDir()
	slim := filepath.Join(dir, "slim")
	build := exec.Command(goTool, "build", "-o", slim, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	shimDir := filepath.Join(dir, "shim")
	env := append(withoutVars(os.Environ(), "LD_PRELOAD", "SLIM_DEBUG"), "SLIM_SHIM_DIR="+shimDir)
	wantShim := filepath.Join(shimDir, shimfile.Name(prebuilt.Shim()))

	t.Run("LD_PRELOAD reaches the program", func(t *testing.T) {
		cmd := exec.Command(slim, "exec", "--", "sh", "-c", `echo "$LD_PRELOAD"; echo "$SLIM_ROUTER_SOCK"`)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("slim exec: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 2 || lines[0] != wantShim || lines[1] != "/run/slim/router.sock" {
			t.Errorf("program saw %q, want LD_PRELOAD=%s and SLIM_ROUTER_SOCK=/run/slim/router.sock", out, wantShim)
		}
		if info, err := os.Stat(wantShim); err != nil || info.Mode().Perm() != 0o644 {
			t.Errorf("extracted shim %s: %v, %v; want mode 0644", wantShim, info, err)
		}
	})

	t.Run("the shim loads", func(t *testing.T) {
		cmd := exec.Command(slim, "exec", "/bin/true")
		cmd.Env = append(env, "SLIM_DEBUG=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("slim exec /bin/true: %v; stderr: %s", err, &stderr)
		}
		if !strings.Contains(stderr.String(), "slim: shim loaded (pid ") {
			t.Errorf("stderr = %q, want the shim's loaded line", &stderr)
		}
	})

	t.Run("unpreloadable program runs with one notice", func(t *testing.T) {
		setuid := testenv.CopyExecutable(t, "/bin/true", 0o755|os.ModeSetuid)
		cmd := exec.Command(slim, "exec", setuid)
		cmd.Env = append(env, "SLIM_DEBUG=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("slim exec %s: %v; stderr: %s", setuid, err, &stderr)
		}
		want := "slim exec: " + setuid + " is setuid/setgid (the loader ignores LD_PRELOAD for it); acceleration cannot apply, running it unaccelerated over the overlay\n"
		if stderr.String() != want {
			t.Errorf("stderr = %q, want exactly %q", &stderr, want)
		}
	})

	t.Run("exit status passes through", func(t *testing.T) {
		cmd := exec.Command(slim, "exec", "--", "sh", "-c", "exit 7")
		cmd.Env = env
		err := cmd.Run()
		if exitErr, ok := err.(*exec.ExitError); !ok || exitErr.ExitCode() != 7 {
			t.Errorf("exit = %v, want status 7", err)
		}
	})

	t.Run("missing command", func(t *testing.T) {
		cmd := exec.Command(slim, "exec", "--", "no-such-program-slim-test")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if exitErr, ok := err.(*exec.ExitError); !ok || exitErr.ExitCode() != 1 || !strings.Contains(string(out), "no-such-program-slim-test") {
			t.Errorf("exit %v, output %q; want exit 1 naming the program", err, out)
		}
	})
}

// withoutVars returns env without the named variables.
func withoutVars(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}
