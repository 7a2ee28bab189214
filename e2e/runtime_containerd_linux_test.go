package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerd is a containerd daemon (Debian's containerd 1.6, CRI off) on
// one lab host, driven with ctr: its state under the host's work
// directory, containers run by the runc shim with the slim wrapper as
// runc (--runc-binary). ctr gives containers a network namespace of their
// own: the wrapper's hooks attach them to Slim's network.
type containerd struct {
	host *runtimeHost
	img  testImage
	sock string
}

const (
	containerdImage     = "docker.io/library/slim-test:base"
	containerdNamespace = "slimtest"
)

// ociArchive makes the test image an OCI image archive with umoci.
func ociArchive(t *testing.T, img testImage, dir string) string {
	t.Helper()
	layout, bundle, archive := filepath.Join(dir, "oci"), filepath.Join(dir, "bundle"), filepath.Join(dir, "oci.tar")
	steps := [][]string{
		{"umoci", "init", "--layout", layout},
		{"umoci", "new", "--image", layout + ":base"},
		{"umoci", "unpack", "--image", layout + ":base", bundle},
		{"cp", "-a", img.rootfs + "/.", filepath.Join(bundle, "rootfs")},
		{"umoci", "repack", "--image", layout + ":base", bundle},
		{"tar", "-C", layout, "-cf", archive, "."},
	}
	for _, argv := range steps {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	return archive
}

func newContainerd(t *testing.T, host *runtimeHost, img testImage, archive string) *containerd {
	t.Helper()
	dir := filepath.Join(host.dir, "containerd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	removeCreated(t, "/run/containerd")
	c := &containerd{host: host, img: img, sock: filepath.Join(dir, "containerd.sock")}
	config := filepath.Join(dir, "config.toml")
	writeFile(t, config, fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc", filepath.Join(dir, "opt")))
	daemon := host.command(nil, "containerd", "--config", config)
	logFile, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	daemon.Stdout, daemon.Stderr = logFile, logFile
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { daemon.Wait(); logFile.Close(); close(done) }()
	t.Cleanup(func() {
		if out, _ := c.ctr("containers", "ls", "-q"); strings.TrimSpace(out) != "" {
			for _, id := range strings.Fields(out) {
				c.ctr("task", "kill", "-s", "KILL", id)
				for i := 0; i < 50; i++ {
					if _, err := c.ctr("task", "delete", id); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				c.ctr("containers", "delete", id)
			}
		}
		stopDaemon(daemon, done)
		unmountUnder(dir)
		removeCgroupTree(containerdNamespace) // runc's cgroups of the namespace
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := c.ctr("version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("containerd does not answer after 30 s")
		}
	}
	if out, err := c.ctr("images", "import", "--base-name", strings.TrimSuffix(containerdImage, ":base"), archive); err != nil {
		t.Fatalf("ctr images import: %v\n%s", err, out)
	}
	return c
}

func (c *containerd) ctr(args ...string) (string, error) {
	out, err := exec.Command("ctr", append([]string{"--address", c.sock, "--namespace", containerdNamespace}, args...)...).CombinedOutput()
	return string(out), err
}

func (c *containerd) run(t *testing.T, name string, accelerated bool, argv ...string) string {
	t.Helper()
	args := []string{"run", "-d", "--runc-binary", c.host.wrapper,
		"--mount", "type=bind,src=/usr,dst=/usr,options=rbind:ro",
		"--mount", "type=bind,src=" + c.img.nginx + ",dst=/etc/nginx-slim.conf,options=rbind:ro"}
	if accelerated {
		args = append(args, "--env", "SLIM_ACCELERATE=1")
	}
	if out, err := c.ctr(append(append(args, containerdImage, name), argv...)...); err != nil {
		t.Fatalf("ctr run %s: %v\n%s\nwrapper log:\n%s", name, err, out, c.host.wrapperLog())
	}
	addr, ok := c.host.containerAddr(t, name)
	if !ok {
		t.Fatalf("container %s is not registered with the router of %s; wrapper log:\n%s", name, c.host.name, c.host.wrapperLog())
	}
	return addr
}

var execCount int

func (c *containerd) exec(t *testing.T, name string, argv ...string) (string, error) {
	execCount++
	return c.ctr(append([]string{"task", "exec", "--exec-id", fmt.Sprintf("e%d", execCount), name}, argv...)...)
}

func (c *containerd) id(t *testing.T, name string) string { return name }

// removeCgroupTree kills what still runs in the cgroup name (a container
// whose task containerd did not stop: runc's processes outlive the daemon)
// and removes it, children first, at the root of every cgroup hierarchy in
// /proc/mounts (v1 and v2).
func removeCgroupTree(name string) {
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return
	}
	var roots []string
	for _, line := range strings.Split(string(mounts), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 2 && (fields[2] == "cgroup" || fields[2] == "cgroup2") {
			roots = append(roots, filepath.Join(fields[1], name))
		}
	}
	for _, root := range roots {
		killCgroupTree(root)
	}
	time.Sleep(200 * time.Millisecond) // the killed processes leave their cgroups
	for _, root := range roots {
		removeDirTree(root)
	}
}

// killCgroupTree sends SIGKILL to every process in a cgroup and below.
func killCgroupTree(dir string) {
	if procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
		for _, f := range strings.Fields(string(procs)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			killCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
}

// removeDirTree removes a cgroup directory after its subdirectories (the
// kernel's files in them go with each directory).
func removeDirTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeDirTree(filepath.Join(dir, e.Name()))
		}
	}
	os.Remove(dir)
}
