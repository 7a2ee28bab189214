package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
