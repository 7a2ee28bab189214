package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/testenv"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/lab"
)

// engine is a container engine running on one lab host, with the slim
// runtime wrapper and Slim's network.
type engine interface {
	// run starts a detached container of the test image; accelerated
	// says whether it opts in. It returns the container's overlay address.
	run(t *testing.T, name string, accelerated bool, argv ...string) string
	// exec runs argv in a running container and returns its output.
	exec(t *testing.T, name string, argv ...string) (string, error)
	// id is the container's ID, the CNI container ID.
	id(t *testing.T, name string) string
}

// runtimeHost is what the engines of one lab host share: the lab, the
// host, a work directory, the CNI configuration and the wrapper.
type runtimeHost struct {
	l       *testLab
	name    string // h1, h2
	netns   string // its namespace path
	dir     string
	cniConf string // the network configuration list (network "slim")
	cniBin  string // a CNI path holding slim
	wrapper string // the runtime wrapper as engines run it
	log     string // the wrapper's log
}

const nginxResponse = "hello from slim\n"

// newRuntimeLab is a two-host lab with routers and no containers: the
// engines make them.
func newRuntimeLab(t *testing.T, prefix string) *testLab {
	t.Helper()
	testenv.Integration(t)
	build(t)
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	l, err := lab.Up(lab.Spec{Name: name, Hosts: 2, Containers: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Down(name); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err := l.StartRouters(slimPath, "--verbose"); err != nil {
		t.Fatal(err)
	}
	return &testLab{t: t, Lab: l}
}

// newRuntimeHost prepares host for engines: the CNI network, the wrapper
// (as a script, since engines take a path and no arguments) and its config.
func newRuntimeHost(t *testing.T, l *testLab, host, dir string) *runtimeHost {
	t.Helper()
	n, err := l.Node(host)
	if err != nil {
		t.Fatal(err)
	}
	h := &runtimeHost{l: l, name: host, netns: "/run/netns/" + n.Netns, dir: dir,
		cniConf: filepath.Join(dir, "net.d", "10-slim.conflist"), cniBin: filepath.Join(dir, "cni-bin"),
		wrapper: filepath.Join(dir, "slim-runc"), log: filepath.Join(dir, "runtime.log")}
	for _, d := range []string{filepath.Dir(h.cniConf), h.cniBin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(slimPath, filepath.Join(h.cniBin, "slim")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, h.cniConf, fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "slim", "plugins": [{"type": "slim", "routerConfig": %q, "dataDir": %q}]}`,
		filepath.Join(l.RouterDir(host), "router.json"), filepath.Join(dir, "cni-data")))
	config := filepath.Join(dir, "runtime.json")
	writeFile(t, config, fmt.Sprintf(`{"router_dir": %q, "log": %q, "network": %q, "cni_path": [%q], "cni_cache_dir": %q}`,
		l.RouterDir(host), h.log, h.cniConf, h.cniBin, filepath.Join(dir, "cni-cache")))
	writeFile(t, h.wrapper, fmt.Sprintf("#!/bin/sh\nexec %s oci-runtime --slim-config=%s \"$@\"\n", slimPath, config))
	if err := os.Chmod(h.wrapper, 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

// command runs argv in the host's network namespace. Not `ip netns exec`:
// it remounts /sys, and runc then finds no cgroup.
func (h *runtimeHost) command(env []string, argv ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--net=" + h.netns, "--"}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// wrapperLog is what the wrapper logged so far.
func (h *runtimeHost) wrapperLog() string {
	data, _ := os.ReadFile(h.log)
	return string(data)
}

// testImage is the test image: no program of its own, /usr comes from
// the host (bind-mounted read-only), so it is tiny and needs no registry.
type testImage struct {
	rootfs  string // the unpacked image
	tarball string // the same as a tar of its root
	nginx   string // an nginx configuration file to mount at /etc/nginx-slim.conf
}

func newTestImage(t *testing.T, dir string) testImage {
	t.Helper()
	img := testImage{rootfs: filepath.Join(dir, "rootfs"), tarball: filepath.Join(dir, "image.tar"), nginx: filepath.Join(dir, "nginx.conf")}
	for _, d := range []string{"proc", "sys", "dev", "etc", "tmp", "run", "usr", "var/tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(img.rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := os.Symlink("usr/"+l, filepath.Join(img.rootfs, l)); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(img.rootfs, "tmp"), 0o1777)
	writeFile(t, filepath.Join(img.rootfs, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	writeFile(t, filepath.Join(img.rootfs, "etc/group"), "root:x:0:\nnogroup:x:65534:\n")
	if out, err := exec.Command("tar", "-C", img.rootfs, "-cf", img.tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	writeFile(t, img.nginx, `worker_processes 1; daemon off; pid /tmp/nginx.pid; error_log stderr;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path /tmp/body; proxy_temp_path /tmp/proxy; fastcgi_temp_path /tmp/fastcgi;
  uwsgi_temp_path /tmp/uwsgi; scgi_temp_path /tmp/scgi;
  server { listen 80; location / { return 200 "`+strings.TrimSuffix(nginxResponse, "\n")+`\n"; } }
}
`)
	return img
}

var nginxCommand = []string{"nginx", "-e", "stderr", "-c", "/etc/nginx-slim.conf"}

// servePair is the scenario every engine runs: nginx accelerated in a
// container of h1, curl and wrk accelerated in a container of h2 (the
// VXLAN devices carry nothing of it), and a container of h2 that did not
// opt in, which reaches nginx over the overlay.
// It returns nginx's address.
func servePair(t *testing.T, l *testLab, h1, h2 engine, h1Host, h2Host *runtimeHost) string {
	web := h1.run(t, "web", true, nginxCommand...)
	l.waitForTCP(t, "h1", web+":80", 20*time.Second)
	l.waitForDirectory("h2", web, 80, 10*time.Second)
	h1Host.requireListener(t, web)

	h2.run(t, "client", true, "sleep", "600")
	requireControlRefused(t, h2, "client")
	url := "http://" + web + ":80/"
	if out, err := h2.exec(t, "client", "curl", "-sS", "--max-time", "10", url); err != nil || out != nginxResponse {
		t.Fatalf("curl from the accelerated client: %q, %v", out, err)
	}
	before := l.vxlanBytes("h1")
	out, err := h2.exec(t, "client", "wrk", "-t1", "-c4", "-d2s", "--timeout", "5s", url)
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	vxlan := l.vxlanBytes("h1") - before
	read := wrkBytesRead(t, out)
	if read < 100_000 || vxlan > read/10 {
		t.Errorf("wrk read %d bytes from nginx, and the VXLAN device of h1 carried %d: want the traffic off the overlay\n%s", read, vxlan, out)
	}
	h2Host.requireShimSetups(t, h2.id(t, "client"))

	h2.run(t, "plain", false, "sleep", "600")
	if out, err := h2.exec(t, "plain", "sh", "-c", `echo "preload=${LD_PRELOAD:-none}"`); err != nil || out != "preload=none\n" {
		t.Errorf("the container that did not opt in: %q, %v; want no preload", out, err)
	}
	before = l.vxlanBytes("h1")
	if out, err := h2.exec(t, "plain", "curl", "-sS", "--max-time", "10", url); err != nil || out != nginxResponse {
		t.Fatalf("curl from the plain container: %q, %v", out, err)
	}
	if vxlan := l.vxlanBytes("h1") - before; vxlan < uint64(len(nginxResponse)) {
		t.Errorf("the plain container's request did not cross the overlay (VXLAN %d bytes)", vxlan)
	}
	return web
}

// controlProbe, run as root in a container, asks the router's control
// socket (in the directory the wrapper mounted at /run/slim) for a
// snapshot and prints the reply.
const controlProbe = `
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect("/run/slim/control.sock")
try:
    s.sendall(b'{"version":1,"op":"snapshot"}\n')
except OSError:
    pass  # refused at once: the reply is there to read
print(s.makefile().readline(), end="")
`

// requireControlRefused attacks the control API from inside an accelerated
// container, as its root: it must get nothing (the router's whole state,
// and with container_del or policy_add the power to change it, before).
func requireControlRefused(t *testing.T, e engine, name string) {
	t.Helper()
	out, err := e.exec(t, name, "python3", "-c", controlProbe)
	if err != nil || !strings.Contains(out, `"ok":false`) || strings.Contains(out, `"snapshot"`) || !strings.Contains(out, "serves the router's host only") {
		t.Errorf("the control socket answered root in a container: %v\n%.300s", err, out)
	}
}

// waitForTCP waits until a connection from host to addr succeeds.
func (l *testLab) waitForTCP(t *testing.T, host, addr string, timeout time.Duration) {
	t.Helper()
	n, err := l.Node(host)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err = n.Do(func() error {
			conn, err := net.DialTimeout("tcp4", addr, time.Second)
			if err == nil {
				conn.Close()
			}
			return err
		})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing accepts on %s from %s after %v: %v", addr, host, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var wrkRead = regexp.MustCompile(`requests in [^,]+, ([0-9.]+)([KMG]?B) read`)

// wrkBytesRead parses wrk's "N requests in Ts, X MB read".
func wrkBytesRead(t *testing.T, out string) uint64 {
	t.Helper()
	m := wrkRead.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no byte count in wrk's output:\n%s", out)
	}
	value, _ := strconv.ParseFloat(m[1], 64)
	unit := map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[m[2]]
	return uint64(value * unit)
}

// snapshot asks the host's router for its state.
func (h *runtimeHost) snapshot(t *testing.T) control.Snapshot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := control.Dial(ctx, filepath.Join(h.l.RouterDir(h.name), "control.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// containerAddr is the address of a registered container, found by the
// start of its CNI container ID (or its name).
func (h *runtimeHost) containerAddr(t *testing.T, id string) (string, bool) {
	for _, c := range h.snapshot(t).Containers {
		if c.Name == id || (c.ContainerID != "" && strings.HasPrefix(c.ContainerID, id)) {
			return c.Addr.String(), true
		}
	}
	return "", false
}

// requireListener waits until the router of the host lists an
// accelerated listener of the container at addr.
func (h *runtimeHost) requireListener(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, l := range h.snapshot(t).Listeners {
			if l.Overlay.Addr().String() == addr {
				return
			}
		}
	}
	t.Fatalf("the router of %s lists no accelerated listener of %s; wrapper log:\n%s", h.name, addr, h.wrapperLog())
}

// requireShimSetups waits until the router of the host credits the
// container (by the start of its name or container ID) with accelerated
// connects its shims reported.
func (h *runtimeHost) requireShimSetups(t *testing.T, id string) {
	t.Helper()
	var seen []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		seen = seen[:0]
		for _, c := range h.snapshot(t).Containers {
			seen = append(seen, fmt.Sprintf("%s(%s): %d setups", c.Name, c.ContainerID, c.ShimSetups))
			if (c.Name == id || strings.HasPrefix(c.ContainerID, id)) && c.ShimSetups > 0 {
				return
			}
		}
	}
	t.Errorf("the router of %s credits container %s with no accelerated connect: %v", h.name, id, seen)
}

// unmountUnder detaches every mount at or below dir (deepest first): what
// an engine left if it died.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	f.Close()
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		unix.Unmount(p, unix.MNT_DETACH)
	}
}

// stopDaemon ends a daemon the test started: SIGTERM, then SIGKILL.
func stopDaemon(cmd *exec.Cmd, done <-chan struct{}) {
	cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// removeCreated removes, when t ends, those of paths that do not exist
// now: directories engines make at fixed places whatever their
// configuration says (podman's CNI cache /var/lib/cni, dockerd's
// /run/docker/plugins, the containerd shim's /run/containerd/…).
func removeCreated(t *testing.T, paths ...string) {
	for _, p := range paths {
		if _, err := os.Lstat(p); os.IsNotExist(err) {
			t.Cleanup(func() { os.RemoveAll(p) })
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
