package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
)

// Servers whose accepting process is not the one that serves: Node's
// cluster module (the primary accepts and passes each connection to a
// worker over IPC, SCM_RIGHTS), gunicorn's pre-fork workers (they accept
// from a listener they inherited), and acceptors passing connections to
// another program, preloaded to supervised and back. Across hosts, under
// slim exec on both sides, the connections are host connections and
// every worker sees the client's overlay address (docs/datapath.md, "A
// connection passed to another process"). Before, Node's workers saw the
// client's host address (::ffff:198.18.0.2) and the host listener's as
// their own.
func TestIntegrationPassedConnections(t *testing.T) {
	testenv.Tools(t, "node", "curl", "gcc", "/usr/bin/python3")
	if out, err := exec.Command("/usr/bin/python3", "-c", "import gunicorn").CombinedOutput(); err != nil {
		t.Fatalf("gunicorn (python3-gunicorn, make deps installs it): %v\n%s", err, out)
	}
	l := newLab(t, "psc")
	t.Run("node-cluster", func(t *testing.T) { l.t = t; nodeCluster(t, l) })
	t.Run("gunicorn", func(t *testing.T) { l.t = t; gunicornWorkers(t, l) })
	t.Run("passconn", func(t *testing.T) { l.t = t; passedAcross(t, l) })
}

// servedLine is what the test servers answer: the worker, and the
// connection's addresses as it sees them.
var servedLine = regexp.MustCompile(`worker=(\S+) remote=(\S+) local=(\S+)`)

// checkServed checks every served line of out: the client's overlay
// address as the remote (form: "" or "::ffff:"), the server's overlay
// address and port as the local one; it returns the workers seen.
func checkServed(t *testing.T, out, form, client, server string, port int) map[string]bool {
	t.Helper()
	workers := map[string]bool{}
	lines := servedLine.FindAllStringSubmatch(out, -1)
	if len(lines) == 0 {
		t.Fatalf("no answer from the server:\n%s", out)
	}
	for _, m := range lines {
		workers[m[1]] = true
		if !strings.HasPrefix(m[2], form+client+":") {
			t.Errorf("worker %s sees the client as %s; want %s%s:PORT", m[1], m[2], form, client)
		}
		if want := fmt.Sprintf("%s%s:%d", form, server, port); m[3] != want {
			t.Errorf("worker %s sees its own address as %s; want %s", m[1], m[3], want)
		}
	}
	return workers
}

// whileHeld runs slow (clients whose requests take a second) and, while
// they wait, checks that they hold host connections to server's host
// listener; it returns what the clients printed.
func whileHeld(t *testing.T, l *testLab, server string, port int, slow ...*program) string {
	t.Helper()
	listener := l.hostListenerOf("h2", server, port)
	held := false
	for deadline := time.Now().Add(900 * time.Millisecond); !held && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		held = hasConnectionTo(l.hostConnections("h2"), listener)
	}
	if !held {
		t.Errorf("no host connection to %s's host listener %s while the requests were under way", server, listener)
	}
	var out strings.Builder
	for _, p := range slow {
		if err := p.wait(10 * time.Second); err != nil {
			t.Errorf("%s: %v\n%s", p.name, err, p.output())
		}
		out.WriteString(p.output())
	}
	return out.String()
}

// flatVXLAN fails t if more than a few packets' worth crossed h1's VXLAN
// device since before (a connection over the overlay carries some 1 KB).
func flatVXLAN(t *testing.T, l *testLab, before uint64) {
	t.Helper()
	if crossed := l.vxlanBytes("h1") - before; crossed > 512 {
		t.Errorf("%d bytes crossed the VXLAN device: the connections were not all accelerated", crossed)
	}
}

// nodeCluster: a 3-worker cluster, one slow request held while six more
// come; round-robin gives every worker some, and each sees the client.
func nodeCluster(t *testing.T, l *testLab) {
	const port, workers = 8090, 3
	server := l.start("h1-c1", true, "node", testdataPath("nodecluster.js"), fmt.Sprint(port), fmt.Sprint(workers))
	server.waitFor("workers listening", 15*time.Second)
	serverAddr, clientAddr := l.containerAddr("h1-c1"), l.containerAddr("h2-c1")
	l.waitForDirectory("h2", serverAddr, port, 5*time.Second)
	url := fmt.Sprintf("http://%s:%d", serverAddr, port)
	before := l.vxlanBytes("h1")
	slow := l.start("h2-c1", true, "curl", "-sS", "--max-time", "10", url+"/slow")
	out := whileHeld(t, l, serverAddr, port, slow)
	for range 2 * workers {
		got, err := l.curl("h2-c1", true, url+"/")
		if err != nil {
			t.Errorf("curl: %v\n%s", err, got)
		}
		out += got
	}
	flatVXLAN(t, l, before)
	// Node shows its dual-stack socket's IPv4 peers v4-mapped.
	if seen := checkServed(t, out, "::ffff:", clientAddr, serverAddr, port); len(seen) != workers {
		t.Errorf("workers %v served; want all %d:\n%s", seen, workers, out)
	}
	if strings.Contains(server.output(), "198.18.") {
		t.Errorf("a host address reached the server:\n%s", server.output())
	}
}

// gunicornWorkers: gunicorn with 3 sync workers (pre-fork: each accepts
// from the listener the arbiter made), as users start it in a container
// (every address; its default is 127.0.0.1). Three slow requests at once
// hold one worker each.
func gunicornWorkers(t *testing.T, l *testLab) {
	const port, workers = 8000, 3
	server := l.start("h1-c1", true, "/usr/bin/python3", "-m", "gunicorn", "-w", fmt.Sprint(workers),
		"-b", fmt.Sprintf("0.0.0.0:%d", port), "--chdir", filepath.Dir(testdataPath("wsgipeer.py")), "wsgipeer:app")
	server.waitFor("Listening at", 15*time.Second)
	serverAddr, clientAddr := l.containerAddr("h1-c1"), l.containerAddr("h2-c1")
	l.waitForDirectory("h2", serverAddr, port, 10*time.Second)
	for deadline := time.Now().Add(10 * time.Second); strings.Count(server.output(), "Booting worker") < workers; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gunicorn did not boot %d workers:\n%s", workers, server.output())
		}
	}
	url := fmt.Sprintf("http://%s:%d", serverAddr, port)
	before := l.vxlanBytes("h1")
	var slow []*program
	for range workers {
		slow = append(slow, l.start("h2-c1", true, "curl", "-sS", "--max-time", "10", url+"/slow"))
	}
	out := whileHeld(t, l, serverAddr, port, slow...)
	seen := checkServed(t, out, "", clientAddr, serverAddr, port)
	got, err := l.curl("h2-c1", true, url+"/")
	if err != nil {
		t.Errorf("curl: %v\n%s", err, got)
	}
	checkServed(t, got, "", clientAddr, serverAddr, port)
	flatVXLAN(t, l, before)
	if len(seen) != workers {
		t.Errorf("workers %v served the %d concurrent requests; want %d:\n%s", seen, workers, workers, out)
	}
	for _, m := range regexp.MustCompile(`remote=(\S+) local=\S+ peer=(\S+)`).FindAllStringSubmatch(out+got, -1) {
		if m[1] != m[2] {
			t.Errorf("REMOTE_ADDR %s but the socket's peer is %s", m[1], m[2])
		}
	}
}

// passedAcross: testdata/c passconn's acceptor passes its connections to
// another program: a preloaded acceptor to a receiver built static (so
// supervised: it reads the names when the program asks the kernel's
// getpeername and getsockname, which are trapped), and a supervised
// acceptor (its supervisor writes the name book at accept: it does not
// see the program's sendmsg) to a preloaded receiver.
func passedAcross(t *testing.T, l *testLab) {
	dir := sharedTempDir(t)
	static := filepath.Join(dir, "passconn-static")
	src := filepath.Join(repoRoot, "testdata", "c", "passconn.c")
	if out, err := exec.Command("gcc", "-static", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread", "-o", static, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc -static passconn: %v\n%s", err, out)
	}
	for i, pair := range []struct{ name, sender, receiver string }{
		{"supervised-receiver", binPath("passconn"), static},
		{"supervised-sender", static, binPath("passconn")},
	} {
		t.Run(pair.name, func(t *testing.T) {
			l.t = t
			sock := filepath.Join(dir, pair.name+".sock")
			receiver := l.start("h1-c1", true, pair.receiver, "receiver", sock)
			receiver.waitFor("receiver listening", 10*time.Second)
			// In the environment of what starts from here (not with
			// env: slim exec would preload env, which execs a static
			// program unsupervised). The client and the receiver do
			// not read SLIMTEST_PASS_SOCK.
			t.Setenv("SLIMTEST_PASS_SOCK", sock)
			t.Setenv("SLIMTEST_PASS_RECEIVERS", "1")
			before := l.vxlanBytes("h1")
			runPairArgv(t, l, []string{binPath("passconn")}, []string{pair.sender}, "h2-c1", "h1-c1", true, true, 8200+10*i)
			flatVXLAN(t, l, before) // its connections echo 120 KB
			if err := receiver.wait(10 * time.Second); err != nil {
				t.Errorf("receiver: %v", err)
			}
			out := receiver.output()
			if strings.Contains(out, "FAIL") || !strings.Contains(out, "ok passed_getpeername") {
				t.Errorf("the receiver's checks:\n%s", out)
			}
			checkSupervised(t, receiver)
		})
	}
}
