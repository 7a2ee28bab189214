package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// docker is a Docker daemon (Debian's docker.io) on one lab host, with no
// bridge and no iptables, its state under the host's work directory and
// the slim wrapper registered as runtime "slim". Its containers run with
// --network none: the wrapper's hooks attach them to Slim's network.
type docker struct {
	host *runtimeHost
	img  testImage
	env  []string
}

const dockerImage = "slim-test:base"

func newDocker(t *testing.T, host *runtimeHost, img testImage) *docker {
	t.Helper()
	dir := filepath.Join(host.dir, "docker")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	removeCreated(t, "/run/docker", "/run/containerd")
	sock := filepath.Join(dir, "docker.sock")
	// Docker 20.10 writes its trust key to /etc/docker/key.json unless told.
	writeFile(t, filepath.Join(dir, "daemon.json"), fmt.Sprintf("{\"deprecated-key-path\": %q}\n", filepath.Join(dir, "key.json")))
	daemon := host.command(nil, "dockerd", "--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", "unix://"+sock,
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--userland-proxy=false", "--storage-driver", "vfs", "--exec-opt", "native.cgroupdriver=cgroupfs",
		"--add-runtime", "slim="+host.wrapper)
	logFile, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	daemon.Stdout, daemon.Stderr = logFile, logFile
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { daemon.Wait(); logFile.Close(); close(done) }()
	d := &docker{host: host, img: img, env: []string{"DOCKER_HOST=unix://" + sock}}
	t.Cleanup(func() {
		if out, _ := d.docker("ps", "-aq"); strings.TrimSpace(out) != "" {
			d.docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
		}
		stopDaemon(daemon, done)
		unmountUnder(dir)
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Logf("dockerd of %s:\n%s", host.name, tail(string(log), 30))
		}
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err := d.docker("version"); err == nil {
			break
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			t.Fatalf("dockerd exited:\n%s", tail(string(log), 30))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("dockerd does not answer after 60 s")
		}
	}
	if out, err := d.docker("import", img.tarball, dockerImage); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	return d
}

func (d *docker) docker(args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), d.env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d *docker) run(t *testing.T, name string, accelerated bool, argv ...string) string {
	t.Helper()
	args := []string{"run", "-d", "--name", name, "--runtime", "slim", "--network", "none",
		"-v", "/usr:/usr:ro", "-v", d.img.nginx + ":/etc/nginx-slim.conf:ro"}
	if accelerated {
		args = append(args, "-e", "SLIM_ACCELERATE=1")
	}
	out, err := d.docker(append(append(args, dockerImage), argv...)...)
	if err != nil {
		t.Fatalf("docker run %s: %v\n%s\nwrapper log:\n%s", name, err, out, d.host.wrapperLog())
	}
	id := strings.TrimSpace(out)
	addr, ok := d.host.containerAddr(t, id)
	if !ok {
		t.Fatalf("docker container %s (%s) is not registered with the router of %s; wrapper log:\n%s", name, id, d.host.name, d.host.wrapperLog())
	}
	return addr
}

func (d *docker) exec(t *testing.T, name string, argv ...string) (string, error) {
	return d.docker(append([]string{"exec", name}, argv...)...)
}

func (d *docker) id(t *testing.T, name string) string {
	t.Helper()
	out, err := d.docker("inspect", "-f", "{{.Id}}", name)
	if err != nil {
		t.Fatal(fmt.Errorf("docker inspect %s: %v\n%s", name, err, out))
	}
	return strings.TrimSpace(out)
}
