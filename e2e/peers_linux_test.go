package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router"
	"github.com/slimnet/slim/router/directory"
)

// The trust boundary between hosts (issue 9, items 7 and 14): a user of
// a peer host must not be able to take over the directory exchange, and
// the routers' view of each other must follow the wire.

// nobody is the unprivileged user the hostile programs run as.
const nobody = 65534

// systemPython is a python3 that an unprivileged user may run (root's
// PATH may lead into /root).
const systemPython = "/usr/bin/python3"

func greetScript() string { return testdataPath("greet.py") }

func testdataPath(name string) string {
	p, _ := filepath.Abs(filepath.Join(repoRoot, "e2e", "testdata", name))
	return p
}

// startAs runs argv in node as user uid (and group uid), not under slim
// exec.
func (l *testLab) startAs(node string, uid uint32, argv ...string) *program {
	l.t.Helper()
	n, err := l.Node(node)
	if err != nil {
		l.t.Fatal(err)
	}
	p := &program{t: l.t, name: fmt.Sprintf("%s (uid %d): %s", node, uid, strings.Join(argv, " ")), exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = "/"
	p.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	p.cmd.Stdout = &lockedWriter{p: p}
	p.cmd.Stderr = p.cmd.Stdout
	if err := n.Start(p.cmd); err != nil {
		l.t.Fatalf("%s: %v", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	l.t.Cleanup(p.stop)
	return p
}

// TestIntegrationPeerForgeryFromLocalUser: an unprivileged user on h2
// pushes forged directories to h1's router, mapping h2-c1's server to a
// server of its own. h1's router publishes none of them, and h1-c1's
// connections, accelerated, still reach the real server.
func TestIntegrationPeerForgeryFromLocalUser(t *testing.T) {
	l := newLab(t, "pfg")
	const port = 7501
	victim := l.containerAddr("h2-c1")
	server := l.start("h2-c1", true, "python3", greetScript(), "server", strconv.Itoa(port))
	server.waitFor("LISTENING", 10*time.Second)
	l.waitForDirectory("h1", victim, port, 10*time.Second)
	h1, _ := l.Node("h1")
	h2, _ := l.Node("h2")
	forger := l.startAs("h2", nobody, systemPython, testdataPath("forgepeer.py"), l.ClusterKeyPath(),
		h1.Addr.String(), strconv.Itoa(router.DefaultPeerPort), h2.Addr.String(), victim, strconv.Itoa(port), "6")
	forger.waitFor("FAKE ", 10*time.Second)
	time.Sleep(time.Second) // the forger pushes every 50 ms
	client := l.start("h1-c1", true, "python3", greetScript(), "client", victim, strconv.Itoa(port), "10")
	if err := client.wait(60 * time.Second); err != nil {
		t.Fatalf("client: %v\n%s", err, client.output())
	}
	if got := linesWithPrefix(client.output(), "GOT REAL"); len(got) != 10 {
		t.Errorf("%d of 10 connections from h1-c1 reached the real server in h2-c1:\n%s", len(got), client.output())
	}
	if host := directoryHost(t, l, "h1", victim, port); host.Addr() != h2.Addr || fakePort(forger) == int(host.Port()) {
		t.Errorf("h1's directory maps %s:%d to %s, the forger's server is on port %d", victim, port, host, fakePort(forger))
	}
	forger.waitFor("FORGED", 20*time.Second)
	if !strings.Contains(forger.output(), "ACKED 0\n") {
		t.Errorf("h1's router acknowledged forged directories:\n%s", forger.output())
	}
	if !strings.Contains(forger.output(), "KEY EACCES") {
		t.Errorf("the unprivileged user's read of the cluster key did not fail with EACCES:\n%s", forger.output())
	}
}

// fakePort is the port of the forger's own server ("FAKE <port>").
func fakePort(p *program) int {
	for _, line := range linesWithPrefix(p.output(), "FAKE ") {
		if n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "FAKE "))); err == nil {
			return n
		}
	}
	return -1
}

// directoryHost is where host's directory table sends addr:port.
func directoryHost(t *testing.T, l *testLab, host, addr string, port int) netip.AddrPort {
	t.Helper()
	table, err := os.ReadFile(filepath.Join(l.RouterDir(host), "directory"))
	if err != nil {
		t.Fatal(err)
	}
	to, found, err := directory.Lookup(table, netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port)))
	if err != nil || !found {
		t.Fatalf("the directory of %s does not list %s:%d (%v)", host, addr, port, err)
	}
	return to
}

// TestIntegrationPeerHealth: the routers' view of each other follows
// what happens between them. Pulled off the wire (everything between the
// hosts dropped without an error), or with its router stopped (its kernel
// still answers TCP), a peer must show as disconnected within seconds, and
// as connected again once it is back.
func TestIntegrationPeerHealth(t *testing.T) {
	l := newLab(t, "pwl")
	const limit = 20 * time.Second // generous: the routers give up after about 5 s (10 s for a stopped one)
	views := map[string]string{"h1": "h2", "h2": "h1"}
	for host, peer := range views {
		waitPeerConnected(t, l, host, peer, true, limit)
	}
	t.Run("wire-cut", func(t *testing.T) {
		l.t = t
		if err := l.SetWire("h2", false); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.SetWire("h2", true) })
		cut := time.Now()
		for host, peer := range views {
			took := waitPeerConnected(t, l, host, peer, false, limit)
			t.Logf("%s saw %s disconnected %v after the wire went silent", host, peer, took.Sub(cut).Round(100*time.Millisecond))
		}
		if err := l.SetWire("h2", true); err != nil {
			t.Fatal(err)
		}
		expectReconnected(t, l, views, limit)
	})
	t.Run("router-stopped", func(t *testing.T) {
		l.t = t
		stalled := l.mustFindRouter("h2")
		l.stopRouter("h2")
		stopped := time.Now()
		took := waitPeerConnected(t, l, "h1", "h2", false, limit)
		t.Logf("h1 saw h2 disconnected %v after h2's router stopped", took.Sub(stopped).Round(100*time.Millisecond))
		if err := syscall.Kill(stalled.pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		expectReconnected(t, l, views, limit)
	})
}

// expectReconnected waits until every router of views is connected to
// its peer again and has received a directory from it since.
func expectReconnected(t *testing.T, l *testLab, views map[string]string, limit time.Duration) {
	t.Helper()
	back := time.Now()
	for host, peer := range views {
		took := waitPeerConnected(t, l, host, peer, true, limit)
		t.Logf("%s saw %s connected again %v after it came back", host, peer, took.Sub(back).Round(100*time.Millisecond))
	}
	for host, peer := range views {
		waitDirectoryAfter(t, l, host, peer, back, limit)
	}
}

// peerView is host's router's view of peer's router.
func peerView(t *testing.T, l *testLab, host, peer string) control.Peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap, err := control.Fetch(ctx, filepath.Join(l.RouterDir(host), control.SocketName))
	if err != nil {
		t.Fatalf("status of %s: %v", host, err)
	}
	n, _ := l.Node(peer)
	for _, p := range snap.Peers {
		if p.Host == n.Addr {
			return p
		}
	}
	t.Fatalf("%s's router does not list %s (%s) as a peer: %+v", host, peer, n.Addr, snap.Peers)
	return control.Peer{}
}

// waitPeerConnected waits until host's router shows its push connection
// to peer as up (or down) and returns when it saw it.
func waitPeerConnected(t *testing.T, l *testLab, host, peer string, up bool, limit time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if peerView(t, l, host, peer).Connected == up {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's router still shows %s connected=%v after %v", host, peer, !up, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitDirectoryAfter(t *testing.T, l *testLab, host, peer string, after time.Time, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if peerView(t, l, host, peer).LastDirectory.After(after) {
			return
		}
	}
	t.Errorf("%s received no directory from %s within %v of the wire coming back", host, peer, limit)
}
