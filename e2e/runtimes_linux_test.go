package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimnet/slim/internal/testenv"
)

// TestIntegrationRuntimes runs real engines (Debian's podman, Docker,
// containerd) in the hosts of one lab, with the slim runtime wrapper and
// Slim's CNI plugin, on a test image that knows nothing of Slim: nginx in
// a container of h1, curl and wrk in a container of h2, both accelerated
// (the VXLAN devices carry nothing of their traffic), and a container
// that did not opt in reaching nginx over the overlay.
func TestIntegrationRuntimes(t *testing.T) {
	testenv.Integration(t)
	testenv.Tools(t, "nsenter", "runc", "nginx", "curl", "wrk", "tar")
	l := newRuntimeLab(t, "rt")
	dir := t.TempDir()
	img := newTestImage(t, dir)
	hosts := func(t *testing.T, engine string) (*runtimeHost, *runtimeHost) {
		return newRuntimeHost(t, l, "h1", mkdir(t, filepath.Join(dir, engine, "h1"))),
			newRuntimeHost(t, l, "h2", mkdir(t, filepath.Join(dir, engine, "h2")))
	}
	t.Run("podman", func(t *testing.T) {
		testenv.Tools(t, "podman")
		l.t = t
		h1, h2 := hosts(t, "podman")
		h2Podman := newPodman(t, h2, img)
		web := servePair(t, l, newPodman(t, h1, img), h2Podman, h1, h2)
		requireLogged(t, h1, "accelerated: the shim is preloaded")
		podmanOtherLibcs(t, h2Podman, web)
	})
	t.Run("docker", func(t *testing.T) {
		testenv.Tools(t, "dockerd", "docker")
		l.t = t
		h1, h2 := hosts(t, "docker")
		servePair(t, l, newDocker(t, h1, img), newDocker(t, h2, img), h1, h2)
		requireLogged(t, h1, "attached to network slim")
	})
	t.Run("containerd", func(t *testing.T) {
		testenv.Tools(t, "containerd", "ctr", "umoci")
		l.t = t
		h1, h2 := hosts(t, "containerd")
		archive := ociArchive(t, img, mkdir(t, filepath.Join(dir, "containerd", "image")))
		servePair(t, l, newContainerd(t, h1, img, archive), newContainerd(t, h2, img, archive), h1, h2)
		requireLogged(t, h2, "attached to network slim")
	})
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// requireLogged checks the wrapper's log of the host.
func requireLogged(t *testing.T, h *runtimeHost, text string) {
	t.Helper()
	if log := h.wrapperLog(); !strings.Contains(log, text) {
		t.Errorf("the wrapper's log of %s does not say %q:\n%s", h.name, text, log)
	}
}
