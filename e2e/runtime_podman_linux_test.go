package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
)

// podman is podman 4 (CNI backend) on one lab host, with all its state
// under the host's work directory and the slim wrapper as its runtime.
type podman struct {
	host *runtimeHost
	img  testImage
	env  []string
}

const podmanImage = "localhost/slim-test:base"

func newPodman(t *testing.T, host *runtimeHost, img testImage) *podman {
	t.Helper()
	dir := filepath.Join(host.dir, "podman")
	conf := filepath.Join(dir, "containers.conf")
	storage := filepath.Join(dir, "storage.conf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, conf, fmt.Sprintf(`[containers]
default_ulimits = ["nofile=16384:16384", "nproc=32768:32768"]
[network]
network_backend = "cni"
cni_plugin_dirs = [%q, "/usr/lib/cni"]
network_config_dir = %q
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %q
tmp_dir = %q
volume_path = %q
static_dir = %q
`, host.cniBin, filepath.Dir(host.cniConf), filepath.Join(dir, "events.log"), filepath.Join(dir, "tmp"),
		filepath.Join(dir, "volumes"), filepath.Join(dir, "storage", "libpod")))
	writeFile(t, storage, fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "storage"), filepath.Join(dir, "run")))
	p := &podman{host: host, img: img, env: []string{"CONTAINERS_CONF=" + conf, "CONTAINERS_STORAGE_CONF=" + storage}}
	// podman import keeps a blob cache in /var/lib/containers, and
	// libcni its cache in /var/lib/cni, whatever the configuration says.
	removeCreated(t, "/var/lib/containers", "/var/lib/cni")
	t.Cleanup(func() {
		p.podman("rm", "--all", "--force", "--time", "0")
		p.podman("system", "reset", "--force")
		unmountUnder(dir)
	})
	if out, err := p.podman("import", img.tarball, podmanImage); err != nil {
		t.Fatalf("podman import: %v\n%s", err, out)
	}
	return p
}

func (p *podman) podman(args ...string) (string, error) {
	cmd := p.host.command(p.env, append([]string{"podman", "--runtime", p.host.wrapper}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *podman) run(t *testing.T, name string, accelerated bool, argv ...string) string {
	t.Helper()
	args := []string{"run", "-d", "--name", name, "--network", "slim", "-v", "/usr:/usr:ro",
		"-v", p.img.nginx + ":/etc/nginx-slim.conf:ro"}
	if accelerated {
		args = append(args, "--annotation", "io.slim.accelerate=true")
	}
	if out, err := p.podman(append(append(args, podmanImage), argv...)...); err != nil {
		t.Fatalf("podman run %s: %v\n%s\nwrapper log:\n%s", name, err, out, p.host.wrapperLog())
	}
	out, err := p.podman("inspect", "-f", `{{(index .NetworkSettings.Networks "slim").IPAddress}}`, name)
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("podman inspect %s: %v\n%s", name, err, out)
	}
	return strings.TrimSpace(out)
}

func (p *podman) exec(t *testing.T, name string, argv ...string) (string, error) {
	return p.podman(append([]string{"exec", name}, argv...)...)
}

func (p *podman) id(t *testing.T, name string) string {
	t.Helper()
	out, err := p.podman("inspect", "-f", "{{.Id}}", name)
	if err != nil {
		t.Fatalf("podman inspect %s: %v\n%s", name, err, out)
	}
	return strings.TrimSpace(out)
}

// runUntil runs a container of image, opted in, with SLIM_DEBUG=1, and
// waits until its output holds want (an attached run, or podman wait,
// takes 20 s here to see a container exit), then removes it.
func (p *podman) runUntil(t *testing.T, want, image string, argv ...string) string {
	t.Helper()
	args := []string{"run", "-d", "--network", "slim", "--annotation", "io.slim.accelerate=true", "-e", "SLIM_DEBUG=1", image}
	out, err := p.podman(append(args, argv...)...)
	if err != nil {
		t.Fatalf("podman run %s %v: %v\n%s\nwrapper log:\n%s", image, argv, err, out, p.host.wrapperLog())
	}
	id := strings.TrimSpace(out)
	defer p.podman("rm", "--force", "--time", "0", id)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out, _ = p.podman("logs", id); strings.Contains(out, want) {
			break
		}
	}
	return out
}

// importRoot makes an image of a root directory.
func (p *podman) importRoot(t *testing.T, root, image string) {
	t.Helper()
	archive := filepath.Join(p.host.dir, filepath.Base(root)+".tar")
	if out, err := exec.Command("tar", "-C", root, "-cf", archive, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	if out, err := p.podman("import", archive, image); err != nil {
		t.Fatalf("podman import: %v\n%s", err, out)
	}
}

// podmanOtherLibcs runs images the shim must be careful with: Debian 11's
// userland (glibc 2.31: the shim loads, the connect is accelerated;
// before preload/compat.h the program did not even start, "version
// GLIBC_2.34 not found"), and an image with no glibc at all (a static
// program: the wrapper does not inject, the container runs).
func podmanOtherLibcs(t *testing.T, p *podman, web string) {
	old := filepath.Join(t.TempDir(), "bullseye")
	if err := os.Rename(testenv.OldGlibcRoot(t), old); err != nil {
		t.Fatal(err)
	}
	p.importRoot(t, old, "localhost/slim-test:bullseye")
	out := p.runUntil(t, nginxResponse, "localhost/slim-test:bullseye", "sh", "-c",
		`printf 'GET / HTTP/1.0\r\n\r\n' | nc.traditional -q 1 `+web+` 80`)
	if !strings.Contains(out, nginxResponse) || !strings.Contains(out, web+":80 via host") {
		t.Errorf("nc of Debian 11 (glibc 2.31) in an opted-in container: want nginx's answer over an accelerated connect:\n%s", out)
	}

	static := filepath.Join(t.TempDir(), "static")
	mkdir(t, static)
	if out, err := exec.Command("gcc", "-static", "-o", filepath.Join(static, "true"), filepath.Join(repoRoot, "testdata", "static_true.c")).CombinedOutput(); err != nil {
		testenv.Require(t, false, fmt.Sprintf("cannot link statically: %v\n%s", err, out))
	}
	p.importRoot(t, static, "localhost/slim-test:static")
	// It started (podman run succeeded), without the shim.
	p.runUntil(t, "", "localhost/slim-test:static", "/true")
	requireLogged(t, p.host, "not accelerated: the shim cannot load into its programs: there is no glibc loader at /lib64/ld-linux-x86-64.so.2; it uses the overlay")
}
