package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/testenv"
)

// The supervised path (issue 13): programs the shim cannot be preloaded
// into (static, musl, Go) accelerated by slim exec's seccomp supervisor.

// supervisedBuilds are the programs built for these tests.
type supervisedBuilds struct {
	glibcStatic, musl string // directories of the C semantics programs
	hostile           string // testdata/c/hostile.c, static
	goStatic, goCgo   string // e2e/testdata/goapp
}

var (
	supOnce  sync.Once
	supBuild supervisedBuilds
	supErr   error
)

// buildSupervised builds the C semantics programs static with glibc and
// with musl (musl-gcc: dynamic, with musl's loader), and goapp without and
// with cgo, once.
func buildSupervised(t *testing.T) supervisedBuilds {
	t.Helper()
	testenv.Tools(t, "gcc", "musl-gcc", "go")
	build(t)
	supOnce.Do(func() {
		dir := filepath.Join(buildDir, "supervised") // removed with it by TestMain
		supBuild = supervisedBuilds{
			glibcStatic: filepath.Join(dir, "glibc-static"), musl: filepath.Join(dir, "musl"),
			goStatic: filepath.Join(dir, "goapp-static"), goCgo: filepath.Join(dir, "goapp-cgo"),
			hostile: filepath.Join(dir, "glibc-static", "hostile"),
		}
		supErr = buildSupervisedIn(supBuild)
	})
	if supErr != nil {
		t.Fatal(supErr)
	}
	return supBuild
}

func buildSupervisedIn(b supervisedBuilds) error {
	flags := []string{"-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread"}
	src := filepath.Join(repoRoot, "testdata", "c")
	var steps [][]string
	for _, dir := range []string{b.glibcStatic, b.musl} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	for _, prog := range semanticPrograms {
		in := filepath.Join(src, prog+".c")
		steps = append(steps,
			append(append([]string{"gcc", "-static"}, flags...), "-o", filepath.Join(b.glibcStatic, prog), in),
			append(append([]string{"musl-gcc"}, flags...), "-o", filepath.Join(b.musl, prog), in))
	}
	for _, prog := range []string{"hostile", "relisten", "connectmany"} {
		out := filepath.Join(b.glibcStatic, prog)
		steps = append(steps, append(append([]string{"gcc", "-static"}, flags...), "-o", out, filepath.Join(src, prog+".c")))
	}
	for _, argv := range steps {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	for out, cgo := range map[string]string{b.goStatic: "0", b.goCgo: "1"} {
		cmd := exec.Command("go", "build", "-o", out, "./testdata/goapp")
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build goapp (CGO_ENABLED=%s): %v\n%s", cgo, err, msg)
		}
	}
	return nil
}

// supervisedPairings: who runs what, for the semantics programs. "sup" is
// the build under test under slim exec (the supervisor), "shim" the
// glibc build under slim exec (preloaded), "plain" the glibc build alone.
var supervisedPairings = []struct {
	name           string
	client, server string // nodes
	clientKind     string
	serverKind     string
	all            bool // every program (else the basic ones)
}{
	{"cross-host", "h2-c1", "h1-c1", "sup", "sup", true},
	{"same-host", "h1-c2", "h1-c1", "sup", "sup", false},
	{"preloaded-client", "h2-c1", "h1-c1", "shim", "sup", false},
	{"preloaded-server", "h2-c1", "h1-c1", "sup", "shim", false},
	{"plain-client", "h2-c1", "h1-c1", "plain", "sup", false},
}

// basicPrograms are the semantics programs every pairing runs.
var basicPrograms = map[string]bool{"connect_block": true, "connect_nonblock": true, "epoll": true, "accept": true, "names": true}

// TestIntegrationSupervisedSemantics runs the C semantics suite built
// static with glibc and with musl under the supervisor, across hosts
// (accelerated: VXLAN counters stay flat), on one host, and with
// preloaded and plain peers.
func TestIntegrationSupervisedSemantics(t *testing.T) {
	l := newLab(t, "sups")
	b := buildSupervised(t)
	port := 5000
	for _, build := range []struct{ name, dir string }{{"glibc-static", b.glibcStatic}, {"musl", b.musl}} {
		for _, prog := range semanticPrograms {
			for _, pair := range supervisedPairings {
				if !pair.all && !basicPrograms[prog] {
					continue
				}
				port += 10
				t.Run(build.name+"/"+prog+"/"+pair.name, func(t *testing.T) {
					l.t = t
					bin := func(kind string) string {
						if kind == "sup" {
							return filepath.Join(build.dir, prog)
						}
						return binPath(prog)
					}
					runPairOf(t, l, bin(pair.clientKind), bin(pair.serverKind), pair.client, pair.server,
						pair.clientKind != "plain", pair.serverKind != "plain", port)
				})
			}
		}
	}
}

// noticeLine is what slim exec prints when it cannot accelerate.
var noticeLine = regexp.MustCompile(`(?m)^slim exec: .*$`)

// checkSupervised fails t if slim exec said it could not accelerate the
// program, or if a host address reached it.
func checkSupervised(t *testing.T, p *program) {
	t.Helper()
	out := p.output()
	name := p.name
	if len(name) > 120 {
		name = name[:120] + "…"
	}
	if n := noticeLine.FindString(out); n != "" {
		t.Errorf("%s: %s", name, n)
	}
	if strings.Contains(out, "198.18.") {
		t.Errorf("%s: a host address reached the program:\n%s", name, tail(out, 20))
	}
}

// TestIntegrationSupervisedGoHTTP: a static Go net/http server and client
// across hosts, a cgo client, and clients not under Slim.
func TestIntegrationSupervisedGoHTTP(t *testing.T) {
	l := newLab(t, "suph")
	b := buildSupervised(t)
	addr := l.containerAddr("h1-c1") + ":8080"
	server := l.start("h1-c1", true, b.goStatic, "serve", addr)
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), 8080, 5*time.Second)

	for _, client := range []struct{ name, bin string }{{"static", b.goStatic}, {"cgo", b.goCgo}} {
		t.Run(client.name, func(t *testing.T) {
			l.t = t
			supervisedGet(t, l, client.bin, addr, server)
		})
	}
	t.Run("plain clients", func(t *testing.T) {
		l.t = t
		plainClientsReach(t, l, b.goStatic, addr)
	})
	checkSupervised(t, server)
}

// supervisedGet fetches 20 MiB from addr with the Go client bin under
// slim exec in h2-c1 (options: goapp get's, after the count) and checks
// what a user would: nothing over VXLAN, no notice, overlay addresses on
// both ends. It returns the client's output.
func supervisedGet(t *testing.T, l *testLab, bin, addr string, server *program, options ...string) string {
	t.Helper()
	before := l.vxlanBytes("h1")
	p := l.start("h2-c1", true, append([]string{bin, "get", "http://" + addr + "/big", "20"}, options...)...)
	if err := p.wait(60 * time.Second); err != nil || !strings.Contains(p.output(), "done 20") {
		t.Fatalf("client: %v\n%s\nserver:\n%s", err, p.output(), tail(server.output(), 20))
	}
	crossed := l.vxlanBytes("h1") - before
	t.Logf("%d bytes over VXLAN for 20 MiB", crossed)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device for 20 MiB between two supervised programs", crossed)
	}
	checkSupervised(t, p)
	names := l.start("h2-c1", true, append([]string{bin, "get", "http://" + addr + "/", "1"}, options...)...)
	names.wait(30 * time.Second)
	want := fmt.Sprintf("answer peer=%s:", l.containerAddr("h2-c1"))
	if out := names.output(); !strings.Contains(out, want) || !strings.Contains(out, "local="+addr) {
		t.Errorf("the server saw other addresses than the overlay's (want %q and local=%s):\n%s", want, addr, out)
	}
	return p.output()
}

// plainClientsReach: Go clients not under Slim, on another host, beside
// the server and in the server's own container, reach addr and are seen
// at their overlay addresses.
func plainClientsReach(t *testing.T, l *testLab, bin, addr string) {
	t.Helper()
	for _, node := range []string{"h2-c1", "h1-c2", "h1-c1"} {
		p := l.start(node, false, bin, "get", "http://"+addr+"/", "3")
		if err := p.wait(30 * time.Second); err != nil || !strings.Contains(p.output(), "done 3") {
			t.Errorf("a client not under Slim in %s: %v\n%s", node, err, p.output())
		}
		if want := "answer peer=" + l.containerAddr(node) + ":"; !strings.Contains(p.output(), want) {
			t.Errorf("client in %s: want %q:\n%s", node, want, p.output())
		}
	}
}

// heldLine is goapp hold's line once every connection is up.
var heldLine = regexp.MustCompile(`(?m)^held (\d+)$`)

// TestIntegrationSupervisedGoThousand holds 1000 connections in one Go
// process under its netpoller, to a Go echo server, both supervised: each
// is a host connection (the host namespace shows them) and nothing crosses
// the VXLAN device.
func TestIntegrationSupervisedGoThousand(t *testing.T) {
	l := newLab(t, "supk")
	b := buildSupervised(t)
	const n = 1000
	addr := l.containerAddr("h1-c1") + ":7100"
	server := l.start("h1-c1", true, b.goStatic, "echo", addr)
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), 7100, 5*time.Second)
	before := l.vxlanBytes("h1")
	hostBefore := len(l.hostConnections("h1"))
	client := l.start("h2-c1", true, b.goStatic, "hold", addr, strconv.Itoa(n), "3", "30")
	client.waitFor("held", 120*time.Second)
	if m := heldLine.FindStringSubmatch(client.output()); m == nil || m[1] != strconv.Itoa(n) {
		t.Fatalf("client: %s", client.output())
	}
	got := len(l.hostConnections("h1")) - hostBefore
	crossed := l.vxlanBytes("h1") - before
	t.Logf("%d host connections in h1, %d bytes over VXLAN", got, crossed)
	if got < n {
		t.Errorf("the host namespace of h1 shows %d more host connections, want at least %d", got, n)
	}
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device for %d supervised connections", crossed, n)
	}
	if !strings.Contains(client.output(), "first HELLO peer="+l.containerAddr("h2-c1")+":") {
		t.Errorf("the server saw another address than the client's overlay address:\n%s", client.output())
	}
	client.stop()
	checkSupervised(t, client)
	checkSupervised(t, server)
}

var churnLine = regexp.MustCompile(`(?m)^churn ok=(\d+) fail=(\d+)$`)

// TestIntegrationSupervisedGoPreemption connects, pings and closes in a
// loop from 8 goroutines of a static Go program while two more spin (the
// runtime keeps preempting), to a Go server that sends itself a signal
// every 100 µs, which the kernel hands to any of its threads, often one
// waiting for the supervisor. Without SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
// a signal that came after the supervisor installed an accepted connection
// but before it answered made the accept start again: the connection was
// left in the server unseen, and its client timed out (a run of 10 s: 661
// ok, 15 failed). With it, none fails.
func TestIntegrationSupervisedGoPreemption(t *testing.T) {
	l := newLab(t, "supp")
	b := buildSupervised(t)
	addr := l.containerAddr("h1-c1") + ":7200"
	server := l.start("h1-c1", true, b.goStatic, "echo", addr, "storm")
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), 7200, 5*time.Second)
	before := l.vxlanBytes("h1")
	client := l.start("h2-c1", true, b.goStatic, "churn", addr, "10")
	err := client.wait(90 * time.Second)
	m := churnLine.FindStringSubmatch(client.output())
	if err != nil || m == nil || m[2] != "0" || m[1] == "0" {
		t.Fatalf("churn under preemption: %v\n%s\nserver:\n%s", err, client.output(), tail(server.output(), 40))
	}
	crossed := l.vxlanBytes("h1") - before
	t.Logf("%s connects, %d bytes over VXLAN", m[1], crossed)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device for %s supervised connections", crossed, m[1])
	}
	checkSupervised(t, client)
}

// TestIntegrationSecureSupervisedGo runs a supervised Go server and client
// under secure mode: enrolled through the guard (which also guards their
// ioctls), accelerated, and the addresses they read are overlay addresses
// (the router's cgroup programs answer getsockname and getpeername).
func TestIntegrationSecureSupervisedGo(t *testing.T) {
	l := newSecureLab(t, "sups")
	b := buildSupervised(t)
	addr := l.containerAddr("h1-c1") + ":7300"
	server := l.start("h1-c1", true, b.goStatic, "echo", addr)
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), 7300, 5*time.Second)
	before := l.vxlanBytes("h1")
	hostBefore := len(l.hostConnections("h1"))
	client := l.start("h2-c1", true, b.goStatic, "hold", addr, "20", "3", "30")
	client.waitFor("held", 60*time.Second)
	got := len(l.hostConnections("h1")) - hostBefore
	crossed := l.vxlanBytes("h1") - before
	t.Logf("%d host connections in h1, %d bytes over VXLAN", got, crossed)
	if got < 20 || crossed > maxStrayOverlayBytes {
		t.Errorf("secure mode: %d host connections (want 20), %d bytes over VXLAN", got, crossed)
	}
	want := fmt.Sprintf("first HELLO peer=%s:", l.containerAddr("h2-c1"))
	if out := client.output(); !strings.Contains(out, want) || !strings.Contains(out, "peer="+addr) {
		t.Errorf("want %q and the server's overlay address:\n%s", want, out)
	}
	client.stop()
	checkSupervised(t, client)
	checkSupervised(t, server)
}

// TestIntegrationSecureHostileSupervisedClient: testdata/c/hostile built
// static (the supervisor accelerates it; no shim) attacks its accelerated
// connection with raw system calls in secure mode: ioctls on the host
// socket (the guard, which is the supervisor), re-targeting options and
// re-connects (the router's cgroup programs), names. Every attack is
// refused as for the preloaded client, and the server sees overlay
// addresses only.
func TestIntegrationSecureHostileSupervisedClient(t *testing.T) {
	l := newSecureLab(t, "shs")
	b := buildSupervised(t)
	const port = 7310
	enableConntrack(t, l, "h1") // so that SO_ORIGINAL_DST has an answer
	server := startHostileServer(l, "h2-c1", "h1", port)
	target := net.JoinHostPort(l.containerAddr("h2-c1"), fmt.Sprint(port))
	out, conns, err := runHostileClientOf(l, b.hostile, "h1-c1", "h1", target)
	if err != nil {
		t.Errorf("hostile client: %v", err)
	}
	if !strings.Contains(out, "DATA ok") || !strings.Contains(out, "ACCEL yes") || len(conns) == 0 {
		t.Errorf("not accelerated (want DATA ok, ACCEL yes and a host connection in h1, have %d):\n%s", len(conns), out)
	}
	checkAllRefused(t, out)
	attacks := parseAttacks(out)
	if a := attacks["getpeername"]; a.detail != target {
		t.Errorf("raw getpeername: %q, want the overlay address %s", a.detail, target)
	}
	client := l.containerAddr("h1-c1")
	if a := attacks["getsockname"]; !strings.HasPrefix(a.detail, client+":") {
		t.Errorf("raw getsockname: %q, want the client's overlay address %s", a.detail, client)
	}
	checkServerSaw(t, server.output(), client)
	t.Logf("client:\n%s\nserver:\n%s", out, server.output())
}

// TestIntegrationSupervisedNoPrivilegedPort: the supervisor binds a host
// socket to the port the program's socket holds, with its own privileges,
// which may exceed the program's (a program that dropped root, a container
// with its own user namespace). A program that bound port 80 in its
// container and connects gets no host socket on the host's port 80: the
// guard runs without CAP_NET_BIND_SERVICE (nor CAP_NET_ADMIN, CAP_NET_RAW),
// so the connection uses the overlay. Before, h2's namespace showed
// 198.18.0.2:80 connected to h1's host listener.
func TestIntegrationSupervisedNoPrivilegedPort(t *testing.T) {
	l := newLab(t, "supv")
	b := buildSupervised(t)
	addr := l.containerAddr("h1-c1") + ":7400"
	server := l.start("h1-c1", true, b.goStatic, "echo", addr)
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), 7400, 5*time.Second)
	client := l.start("h2-c1", true, b.goStatic, "dialfrom", "80", addr)
	client.waitFor("from HELLO", 30*time.Second)
	for _, c := range l.hostConnections("h2") {
		if strings.HasPrefix(c, "198.18.0.2:80-") {
			t.Errorf("a host socket of h2 holds port 80 for the program: %s", c)
		}
	}
	if want := "from HELLO peer=" + l.containerAddr("h2-c1") + ":80 "; !strings.Contains(client.output(), want) {
		t.Errorf("want %q:\n%s", want, client.output())
	}
	client.wait(30 * time.Second)
}

// supervisorOf finds the pid of the guard serving in node (its network
// namespace): the supervisor of the programs started there.
func supervisorOf(t *testing.T, l *testLab, node string) int {
	t.Helper()
	n, err := l.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	var netns string
	n.Do(func() error {
		netns, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	})
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if strings.HasSuffix(string(cmdline), "__ioctl-guard\x00serve\x00") && ns == netns {
			return pid
		}
	}
	t.Fatalf("no supervisor in %s", node)
	return 0
}

// TestIntegrationSupervisorDies kills a supervisor (SIGKILL) under a
// program that uses it. The guard's backstop, which holds the filter's
// listener too, takes over: the calls the supervisor had not answered and
// every later socket call proceed in the kernel, so the program goes on
// over the overlay, never hung and never failing (without the backstop the
// listener closed with the supervisor and every trapped call failed with
// ENOSYS).
func TestIntegrationSupervisorDies(t *testing.T) {
	l := newLab(t, "supd")
	b := buildSupervised(t)
	t.Run("client", func(t *testing.T) {
		l.t = t
		addr := l.containerAddr("h1-c1") + ":7500"
		server := l.start("h1-c1", true, b.goStatic, "echo", addr)
		server.waitFor("listening on", 10*time.Second)
		l.waitForDirectory("h2", l.containerAddr("h1-c1"), 7500, 5*time.Second)
		client := l.start("h2-c1", true, b.goStatic, "churn", addr, "8")
		time.Sleep(2 * time.Second) // let it connect through the supervisor a while
		before := l.vxlanBytes("h1")
		if err := unix.Kill(supervisorOf(t, l, "h2-c1"), unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := client.wait(60 * time.Second)
		m := churnLine.FindStringSubmatch(client.output())
		if err != nil || m == nil || m[2] != "0" {
			t.Fatalf("churn with its supervisor killed: %v\n%s", err, client.output())
		}
		if l.vxlanBytes("h1") == before {
			t.Errorf("no traffic over VXLAN after the supervisor died: the later connects should use the overlay")
		}
		server.stop()
	})
	t.Run("server in a blocking accept", func(t *testing.T) {
		l.t = t
		port := 7510
		server := l.start("h1-c1", true, filepath.Join(b.glibcStatic, "connect_block"), "server", l.containerAddr("h1-c1"), strconv.Itoa(port))
		server.waitFor("listening on", 10*time.Second)
		time.Sleep(200 * time.Millisecond) // into its accept
		if err := unix.Kill(supervisorOf(t, l, "h1-c1"), unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Until the router finds the host listener gone (its sweep), a
		// client that is sent there is refused: a plain client uses the
		// overlay.
		client := l.start("h2-c1", false, binPath("connect_block"), "client", l.containerAddr("h1-c1"), strconv.Itoa(port))
		if err := client.wait(60 * time.Second); err != nil || strings.Contains(client.output(), "FAIL") {
			t.Errorf("client of a server whose supervisor died: %v\n%s\nserver:\n%s", err, client.output(), server.output())
		}
	})
}

// TestIntegrationSupervisedRelisten: relisten built static, under the
// supervisor, closes its listener and listens again at once on the same
// port, 20 times: every bind succeeds (the supervisor holds no copy of the
// program's listener) and every cycle's client is accelerated (the
// withdrawn listener's entry gives way to the new one).
func TestIntegrationSupervisedRelisten(t *testing.T) {
	l := newLab(t, "supr")
	b := buildSupervised(t)
	runRelistenOf(t, l, filepath.Join(b.glibcStatic, "relisten"), 7600, true, false)
}

// TestIntegrationSupervisedEtcd runs a 3-member etcd cluster (Debian's
// etcd-server, a Go program) under slim exec in three containers on two
// hosts: members and clients are supervised, the cluster elects a leader
// and replicates, and the member traffic stays off the VXLAN device.
func TestIntegrationSupervisedEtcd(t *testing.T) {
	testenv.Tools(t, "etcd", "etcdctl")
	l := newLab(t, "supe")
	members := []string{"h1-c1", "h1-c2", "h2-c1"}
	var cluster, endpoints []string
	for i, node := range members {
		cluster = append(cluster, fmt.Sprintf("m%d=http://%s:2380", i, l.containerAddr(node)))
		endpoints = append(endpoints, "http://"+l.containerAddr(node)+":2379")
	}
	for i, node := range members {
		addr := l.containerAddr(node)
		l.start(node, true, "etcd", "--name", fmt.Sprintf("m%d", i), "--data-dir", filepath.Join(t.TempDir(), "data"),
			"--listen-peer-urls", "http://"+addr+":2380", "--initial-advertise-peer-urls", "http://"+addr+":2380",
			"--listen-client-urls", "http://"+addr+":2379", "--advertise-client-urls", "http://"+addr+":2379",
			"--initial-cluster", strings.Join(cluster, ","), "--initial-cluster-state", "new")
	}
	etcdctl := func(node string, args ...string) string {
		p := l.start(node, true, append([]string{"etcdctl", "--endpoints", strings.Join(endpoints, ",")}, args...)...)
		if err := p.wait(30 * time.Second); err != nil {
			t.Fatalf("etcdctl %s: %v\n%s", args[0], err, tail(p.output(), 20))
		}
		checkSupervised(t, p)
		return p.output()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		p := l.start("h1-c1", true, "etcdctl", "--endpoints", strings.Join(endpoints, ","), "endpoint", "health")
		err := p.wait(30 * time.Second)
		if err == nil && strings.Count(p.output(), "is healthy") == len(members) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster is not healthy after 60 s: %v\n%s", err, p.output())
		}
		time.Sleep(500 * time.Millisecond)
	}
	value := strings.Repeat("slim", 16<<10) // 64 KiB
	before := l.vxlanBytes("h1")
	for i := range 20 {
		etcdctl("h1-c1", "put", fmt.Sprintf("k%d", i), value)
	}
	got := etcdctl("h2-c1", "--endpoints", "http://"+l.containerAddr("h2-c1")+":2379", "get", "k19", "--print-value-only")
	crossed := l.vxlanBytes("h1") - before
	conns := len(l.hostConnections("h1"))
	t.Logf("20 puts of 64 KiB: %d bytes over VXLAN, %d host connections in h1", crossed, conns)
	if strings.TrimSpace(got) != value {
		t.Errorf("the member on h2 returned %d bytes, want the 64 KiB put through h1-c1", len(got))
	}
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device for 1.25 MiB replicated to a member on another host", crossed)
	}
	if conns == 0 {
		t.Errorf("no host connection in h1: the members are not accelerated")
	}
}
