package launch

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	prebuilt "github.com/slimnet/slim/embed"
	"github.com/slimnet/slim/internal/shimfile"
	"github.com/slimnet/slim/internal/testenv"
)

func TestPlanExecPrependsShim(t *testing.T) {
	opts := Options{ShimDir: t.TempDir(), RouterSock: "/tmp/r.sock"}
	environ := []string{"PATH=/usr/bin:/bin", "LD_PRELOAD=/opt/a.so:/opt/b.so", "SLIM_ROUTER_SOCK=/old"}
	plan, err := newPlan(opts, []string{"true", "x"}, environ)
	if err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(opts.ShimDir, shimfile.Name(prebuilt.Shim()))
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
	again, err := newPlan(opts, []string{"true"}, plan.env)
	if err != nil {
		t.Fatal(err)
	}
	if got := getenv(again.env, "LD_PRELOAD"); strings.Count(got, "libslim-") != 1 {
		t.Errorf("nested LD_PRELOAD = %q, want the shim once", got)
	}
}

func TestPlanExecSetuidRunsWithoutShim(t *testing.T) {
	setuid := testenv.CopyExecutable(t, "/bin/true", 0o755|os.ModeSetuid)
	opts := Options{ShimDir: t.TempDir(), RouterSock: "/tmp/r.sock"}
	plan, err := newPlan(opts, []string{setuid}, []string{"LD_PRELOAD=/run/slim/shim/libslim-0123456789abcdef.so"})
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
	if entries, _ := os.ReadDir(opts.ShimDir); len(entries) != 0 {
		t.Errorf("shim installed for a binary that cannot use it")
	}
}

func TestWithoutShims(t *testing.T) {
	got := withoutShims("/a.so /run/slim/shim/libslim-0011223344556677.so:/b.so  ")
	if got != "/a.so /b.so" {
		t.Errorf("withoutShims = %q, want %q", got, "/a.so /b.so")
	}
}
