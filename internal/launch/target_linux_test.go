package launch

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimnet/slim/internal/testenv"
)

func TestPreloadBlockerDynamicGlibcBinary(t *testing.T) {
	reason, err := preloadBlocker("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if reason != (blocker{}) {
		t.Errorf("/bin/true: %+v, want it preloadable", reason)
	}
}

func TestPreloadBlockerStaticBinary(t *testing.T) {
	testenv.Tools(t, "gcc")
	gcc, _ := exec.LookPath("gcc")
	static := filepath.Join(t.TempDir(), "static_true")
	out, err := exec.Command(gcc, "-static", "-o", static, "../../testdata/static_true.c").CombinedOutput()
	if err != nil {
		testenv.Require(t, false, fmt.Sprintf("cannot link statically (libc6-dev's static libc missing?): %v\n%s", err, out))
	}
	reason, err := preloadBlocker(static)
	if err != nil {
		t.Fatal(err)
	}
	if want := (blocker{reason: reasonStatic, supervisable: true}); reason != want {
		t.Errorf("static binary: %+v, want %+v", reason, want)
	}
}

func TestPreloadBlockerSetuidBinary(t *testing.T) {
	setuid := testenv.CopyExecutable(t, "/bin/true", 0o755|os.ModeSetuid)
	reason, err := preloadBlocker(setuid)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason.reason, "setuid") || reason.supervisable {
		t.Errorf("setuid binary: %+v, want a setuid reason, not supervisable", reason)
	}
}

func TestPreloadBlockerScript(t *testing.T) {
	script := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tiny := filepath.Join(t.TempDir(), "tiny")
	if err := os.WriteFile(tiny, []byte("#!"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{script, tiny} {
		reason, err := preloadBlocker(path)
		if err != nil || reason != (blocker{}) {
			t.Errorf("%s: %+v, %v; want preloadable", path, reason, err)
		}
	}
}

// TestPreloadBlockerGoProgram: a Go program, even one linked with glibc,
// makes its socket calls without it: the supervisor takes it.
func TestPreloadBlockerGoProgram(t *testing.T) {
	self, err := os.Executable() // this test binary is a Go program
	if err != nil {
		t.Fatal(err)
	}
	reason, err := preloadBlocker(self)
	if err != nil {
		t.Fatal(err)
	}
	if want := (blocker{reason: reasonGo, supervisable: true}); reason != want {
		t.Errorf("Go program: %+v, want %+v", reason, want)
	}
	p, err := newPlan(Options{ShimDir: t.TempDir(), RouterSock: "/tmp/r.sock"}, []string{self}, []string{"LD_PRELOAD=/run/slim/shim/libslim-0011223344556677.so"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.supervise || p.notice != "" || getenv(p.env, "LD_PRELOAD") != "" {
		t.Errorf("plan for a Go program: supervise %v, notice %q, LD_PRELOAD %q; want supervised, no notice, no shim", p.supervise, p.notice, getenv(p.env, "LD_PRELOAD"))
	}
	nested, err := newPlan(Options{ShimDir: t.TempDir(), RouterSock: "/tmp/r.sock"}, []string{"/bin/true"}, []string{socketsSupervisedEnv + "=1"})
	if err != nil {
		t.Fatal(err)
	}
	if nested.supervise || getenv(nested.env, "LD_PRELOAD") != "" {
		t.Errorf("under an outer supervisor: supervise %v, LD_PRELOAD %q; want neither (the outer one covers it)", nested.supervise, getenv(nested.env, "LD_PRELOAD"))
	}
}
