package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimnet/slim/internal/testenv"
)

// TestIntegrationExecOldGlibc runs slim exec inside Debian 11's userland
// (glibc 2.31, chroot): the program starts with the shim loaded. Before
// preload/compat.h the shim needed GLIBC_2.34 and the loader refused to
// start the program ("version `GLIBC_2.34' not found").
func TestIntegrationExecOldGlibc(t *testing.T) {
	testenv.Integration(t)
	testenv.Tools(t, "chroot")
	build(t)
	root := testenv.OldGlibcRoot(t)
	data, err := os.ReadFile(slimPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "slim"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("chroot", root, "/slim", "exec", "--", "/bin/sh", "-c", `echo "preload=$LD_PRELOAD"`)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SLIM_DEBUG=1", "SLIM_ROUTER_SOCK=/run/slim/router.sock"}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "slim: shim loaded") || !strings.Contains(string(out), "preload=/run/slim/shim/libslim-") {
		t.Errorf("slim exec of Debian 11's sh: %v\n%s", err, out)
	}
}
