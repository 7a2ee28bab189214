package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimnet/slim/internal/testenv"

	prebuilt "github.com/slimnet/slim/embed"
	"github.com/slimnet/slim/internal/shimfile"
)

func TestPlanExecPrependsShim(t *testing.T) {
	opts := execOptions{shimDir: t.TempDir(), routerSock: "/tmp/r.sock"}
	environ := []string{"PATH=/usr/bin:/bin", "LD_PRELOAD=/opt/a.so:/opt/b.so", "SLIM_ROUTER_SOCK=/old"}
	plan, err := planExec(opts, []string{"true", "x"}, environ)
	if err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(opts.shimDir, shimfile.Name(prebuilt.Shim()))
	if got, want := getenv(plan.env, "LD_PRELOAD"), shim+" /opt/a.so /opt/b.so"; got != want {
		t.Errorf("LD_PRELOAD = %q, want %q", got, want)
	}
	if got := getenv(plan.env, "SLIM_ROUTER_SOCK"); got != "/tmp/r.sock" {
		t.Errorf("SLIM_ROUTER_SOCK = %q, want /tmp/r.sock", got)
	}
	if plan.notice != "" {
		t.Errorf("notice = %q for a dynamic binary, want none", plan.notice)
	}
	if len(plan.argv) != 2 || plan.argv[0] != "true" || !filepath.IsAbs(plan.path) {
		t.Errorf("plan path %q argv %q, want an absolute path and argv as given", plan.path, plan.argv)
	}
	if data, err := os.ReadFile(shim); err != nil || !bytes.Equal(data, prebuilt.Shim()) {
		t.Errorf("shim not installed at %s: %v", shim, err)
	}

	// A nested slim exec does not preload the shim twice.
	again, err := planExec(opts, []string{"true"}, plan.env)
	if err != nil {
		t.Fatal(err)
	}
	if got := getenv(again.env, "LD_PRELOAD"); strings.Count(got, "libslim-") != 1 {
		t.Errorf("nested LD_PRELOAD = %q, want the shim once", got)
	}
}

func TestPlanExecSetuidRunsWithoutShim(t *testing.T) {
	setuid := copyExecutable(t, "/bin/true", 0o755|os.ModeSetuid)
	opts := execOptions{shimDir: t.TempDir(), routerSock: "/tmp/r.sock"}
	plan, err := planExec(opts, []string{setuid}, []string{"LD_PRELOAD=/run/slim/shim/libslim-0123456789abcdef.so"})
	if err != nil {
		t.Fatal(err)
	}
	if v := getenv(plan.env, "LD_PRELOAD"); v != "" {
		t.Errorf("LD_PRELOAD = %q, want unset for a setuid binary", v)
	}
	want := "slim exec: " + setuid + " is setuid/setgid"
	if !strings.HasPrefix(plan.notice, want) || !strings.HasSuffix(plan.notice, "; acceleration cannot apply, running it unaccelerated over the overlay") || strings.Contains(plan.notice, "\n") {
		t.Errorf("notice = %q, want one line starting %q", plan.notice, want)
	}
	if entries, _ := os.ReadDir(opts.shimDir); len(entries) != 0 {
		t.Errorf("shim installed for a binary that cannot use it")
	}
}

func TestWithoutShims(t *testing.T) {
	got := withoutShims("/a.so /run/slim/shim/libslim-0011223344556677.so:/b.so  ")
	if got != "/a.so /b.so" {
		t.Errorf("withoutShims = %q, want %q", got, "/a.so /b.so")
	}
}

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
	env := append(unsetenv(unsetenv(os.Environ(), "LD_PRELOAD"), "SLIM_DEBUG"), "SLIM_SHIM_DIR="+shimDir)
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
		setuid := copyExecutable(t, "/bin/true", 0o755|os.ModeSetuid)
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
