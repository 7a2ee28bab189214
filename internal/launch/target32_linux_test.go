package launch

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/slimnet/slim/internal/testenv"
)

// TestPreloadBlockerThirtyTwoBitProgram: a 32-bit program (here a static
// Go program built for 386) makes its system calls through the 32-bit
// entry points, which the supervisor does not trap. It is not supervised
// (before, a static one was, and ran silently over the overlay): slim exec
// says in one line that it runs unaccelerated.
func TestPreloadBlockerThirtyTwoBitProgram(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("builds a 386 program to run beside amd64")
	}
	testenv.Tools(t, "go")
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prog386")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOARCH=386", "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for 386: %v\n%s", err, out)
	}
	b, err := preloadBlocker(bin)
	if err != nil {
		t.Fatal(err)
	}
	if b.supervisable || !strings.Contains(b.reason, "EM_386") {
		t.Errorf("386 program: %+v, want not supervisable, naming EM_386", b)
	}
	p, err := newPlan(Options{ShimDir: t.TempDir(), RouterSock: "/tmp/r.sock"}, []string{bin}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.supervise || !strings.Contains(p.notice, "unaccelerated over the overlay") {
		t.Errorf("plan for a 386 program: supervise %v, notice %q; want a notice and no supervisor", p.supervise, p.notice)
	}
}
