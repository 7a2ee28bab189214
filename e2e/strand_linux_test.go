package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// routerTimeout is the shim's router timeout (SLIM_ROUTER_TIMEOUT_MS's
// default): no client may wait longer than that for a server that
// accepts.
const routerTimeout = 500 * time.Millisecond

// TestIntegrationUnseenAccepts: a server whose accepts the shim does not
// see (io_uring, a raw accept4 syscall) strands no accelerated client: its
// clients, blocking or not, get their HELLO over the overlay at once, and
// its directory entry goes away. Once, the shim published the host
// listener at listen(), clients connected to it and nobody ever accepted
// from it: every accelerated client hung. A client that connects through
// io_uring goes over the overlay (the shim does not see its connect).
func TestIntegrationUnseenAccepts(t *testing.T) {
	l := newLab(t, "una")
	for _, tc := range []struct {
		name string
		port int
		argv []string
	}{
		{"io_uring-accept", 7800, []string{binPath("uring"), "server"}},
		{"raw-accept4", 7810, []string{binPath("uring"), "server"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l.t = t
			addr := l.containerAddr("h1-c1")
			argv := append(tc.argv, addr, fmt.Sprint(tc.port))
			if tc.name == "raw-accept4" {
				argv = append(argv, "raw")
			}
			server := l.start("h1-c1", true, argv...)
			server.waitFor("listening on", 10*time.Second)
			blocking := l.start("h2-c1", true, binPath("probe"), addr, fmt.Sprint(tc.port), "40", "25")
			nonblocking := l.start("h2-c2", true, binPath("probe"), addr, fmt.Sprint(tc.port), "40", "25", "nonblock")
			uring := l.start("h2-c1", true, binPath("uring"), "client", addr, fmt.Sprint(tc.port), "20")
			for _, client := range []*program{blocking, nonblocking, uring} {
				paths := probeOutcome(t, client, 60*time.Second)
				if paths["host"] > 0 {
					t.Errorf("%s: %d connections were accelerated to a server that accepts with io_uring", client.name, paths["host"])
				}
			}
			l.waitForDirectoryGone("h2", addr, tc.port, 10*time.Second)
		})
	}
	t.Run("io_uring-connect", func(t *testing.T) {
		l.t = t
		addr := l.containerAddr("h1-c1")
		server := l.start("h1-c1", true, binPath("churn"), "server", addr, "7820")
		server.waitFor("listening on", 10*time.Second)
		l.waitForDirectory("h2", addr, 7820, 10*time.Second)
		client := l.start("h2-c1", true, binPath("uring"), "client", addr, "7820", "20")
		if paths := probeOutcome(t, client, 60*time.Second); paths["host"] > 0 {
			t.Errorf("%d io_uring connects were accelerated: the shim does not see them", paths["host"])
		}
	})
}

// TestIntegrationReload: a seamless reload (the old process hands its
// listening socket to the new one over a unix socket and stops accepting,
// but lives on for 3 s) strands no client that keeps connecting meanwhile,
// and the new process is accelerated. Once, the old process's host
// listener stayed in the directory: every accelerated client that came
// after the hand-over waited until the old process exited.
func TestIntegrationReload(t *testing.T) {
	l := newLab(t, "rld")
	addr := l.containerAddr("h1-c1")
	sock := filepath.Join(t.TempDir(), "reload.sock")
	old := l.start("h1-c1", true, binPath("reload"), "old", addr, "7830", sock, "3000")
	old.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", addr, 7830, 10*time.Second)
	client := l.start("h2-c1", true, binPath("probe"), addr, "7830", "120", "40")
	client.waitFor("conn 10 ", 30*time.Second)
	next := l.start("h1-c1", true, binPath("reload"), "new", sock)
	next.waitFor("got the listener", 10*time.Second)
	paths := probeOutcome(t, client, 90*time.Second)
	conns := probeConns(client.output())
	oldPid, newPid := pidIn(t, old.output()), pidIn(t, next.output())
	if len(conns) == 0 || conns[0].pid != oldPid || conns[0].path != "host" {
		t.Errorf("the first connection was not accelerated to the old generation (pid %d): %+v", oldPid, conns[:min(len(conns), 1)])
	}
	last := conns[max(0, len(conns)-10):]
	for _, c := range last {
		if c.pid != newPid || c.path != "host" {
			t.Errorf("the new generation (pid %d) is not accelerated: the last connections were %+v", newPid, last)
			break
		}
	}
	t.Logf("paths %v; old generation:\n%s\nnew generation:\n%s", paths, old.output(), next.output())
}

// TestIntegrationSpawnedChildren: children that popen() and system()
// start (glibc spawns them internally, past the shim's exec and
// posix_spawn) keep working on the sockets they inherit. A popen child
// sees the overlay addresses of an accepted connection and talks over it;
// a system() child accepts from the inherited listener while its parent
// waits in system(), and no client is stranded meanwhile. Once, such
// children lost the shim's state: the child saw host addresses, and the
// parent's host listener, still published, was accepted from by nobody.
func TestIntegrationSpawnedChildren(t *testing.T) {
	l := newLab(t, "spw")
	addr := l.containerAddr("h1-c1")
	server := l.start("h1-c1", true, binPath("spawn"), "server", addr, "7840", "10")
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", addr, 7840, 10*time.Second)
	client := l.start("h2-c1", true, binPath("spawn"), "client", addr, "7840")
	if err := client.wait(30 * time.Second); err != nil || strings.Contains(client.output(), "FAIL") {
		t.Errorf("popen child (%v):\n%s\nserver:\n%s", err, client.output(), server.output())
	}
	server.waitFor("# system(acceptor)", 10*time.Second)
	probe := l.start("h2-c1", true, binPath("probe"), addr, "7840", "10", "20")
	paths := probeOutcome(t, probe, 60*time.Second)
	serverPid := pidIn(t, server.output())
	for _, c := range probeConns(probe.output()) {
		if c.pid == serverPid {
			t.Errorf("connection %d was served by the parent, which waits in system()", c.idx)
		}
	}
	if paths["host"] == 0 {
		t.Errorf("no connection to the system() child was accelerated: %v", paths)
	}
	server.waitFor("# system returned", 10*time.Second)
	t.Logf("paths %v; server:\n%s", paths, server.output())
}

// probeConn is one line of testdata/c/probe.c's output (or uring client's).
type probeConn struct {
	idx  int
	ms   float64
	path string
	pid  int
}

var probeLine = regexp.MustCompile(`(?m)^conn (\d+) ms=([\d.]+) path=(host|overlay) pid=(\d+)$`)

func probeConns(out string) []probeConn {
	var conns []probeConn
	for _, m := range probeLine.FindAllStringSubmatch(out, -1) {
		idx, _ := strconv.Atoi(m[1])
		ms, _ := strconv.ParseFloat(m[2], 64)
		pid, _ := strconv.Atoi(m[4])
		conns = append(conns, probeConn{idx: idx, ms: ms, path: m[3], pid: pid})
	}
	return conns
}

// probeOutcome waits for a probe client and checks that every connection
// got its HELLO and none waited longer than the router timeout. It
// returns how many connections took each path.
func probeOutcome(t *testing.T, client *program, timeout time.Duration) map[string]int {
	t.Helper()
	err := client.wait(timeout)
	out := client.output()
	if err != nil || strings.Contains(out, "FAIL") {
		t.Errorf("%s (%v): some clients failed or were stranded:\n%s", client.name, err, strings.Join(linesWithPrefix(out, "FAIL"), "\n"))
	}
	if warnings := linesWithPrefix(out, "slim:"); len(warnings) > 0 {
		t.Errorf("%s printed slim warnings:\n%s", client.name, strings.Join(warnings, "\n"))
	}
	paths := map[string]int{}
	var slowest probeConn
	for _, c := range probeConns(out) {
		paths[c.path]++
		if c.ms > slowest.ms {
			slowest = c
		}
	}
	if time.Duration(slowest.ms*float64(time.Millisecond)) > routerTimeout {
		t.Errorf("%s: connection %d waited %.0f ms for its HELLO, more than the router timeout (%v)", client.name, slowest.idx, slowest.ms, routerTimeout)
	}
	t.Logf("%s: %v, slowest %.1f ms", client.name, paths, slowest.ms)
	return paths
}

var pidWord = regexp.MustCompile(`pid (\d+)`)

// pidIn is the pid a test program printed ("... pid N").
func pidIn(t *testing.T, out string) int {
	t.Helper()
	m := pidWord.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no pid in:\n%s", out)
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// waitForDirectoryGone waits until host's directory no longer maps
// addr:port.
func (l *testLab) waitForDirectoryGone(host, addr string, port int, timeout time.Duration) {
	l.t.Helper()
	for deadline := time.Now().Add(timeout); l.directoryLists(host, addr, port); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			l.t.Fatalf("the directory of %s still lists %s:%d after %v", host, addr, port, timeout)
		}
	}
}
