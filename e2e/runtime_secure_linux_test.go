package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimnet/slim/internal/testenv"
)

// TestIntegrationRuntimeSecureRouter: with a router in secure mode, an
// opted-in podman container is not injected (its processes could not be
// enrolled: docs/oci.md), says so in one line, and runs over the overlay.
func TestIntegrationRuntimeSecureRouter(t *testing.T) {
	testenv.Integration(t)
	testenv.Tools(t, "nsenter", "runc", "podman", "tar")
	l := newSecureLab(t, "rts")
	dir := t.TempDir()
	img := newTestImage(t, dir)
	host := newRuntimeHost(t, l, "h1", mkdir(t, filepath.Join(dir, "h1")))
	p := newPodman(t, host, img)
	p.run(t, "secure", true, "sleep", "600")
	out, err := p.exec(t, "secure", "sh", "-c", `echo "preload=${LD_PRELOAD:-none}"`)
	if err != nil || out != "preload=none\n" {
		t.Errorf("an opted-in container under a secure router: %q, %v; want no preload", out, err)
	}
	log := host.wrapperLog()
	if !strings.Contains(log, "not accelerated: the router runs in secure mode") || strings.Count(log, "\n") != 1 {
		t.Errorf("the wrapper's log: want one line saying the router runs in secure mode:\n%s", log)
	}
}
