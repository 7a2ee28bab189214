package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router"
	"github.com/slimnet/slim/secure"
)

func pingScript() string { return filepath.Join(repoRoot, "e2e", "testdata", "pingconn.py") }

// pingFrom makes n short echo connections from node to server's port
// under slim exec and reports how many echoed.
func pingFrom(l *testLab, node, server string, port, n int) (ok int, out string) {
	l.t.Helper()
	p := l.start(node, true, "python3", pingScript(), "ping", l.containerAddr(server), strconv.Itoa(port), strconv.Itoa(n))
	if err := p.wait(60 * time.Second); err != nil {
		l.t.Errorf("%s: %v", p.name, err)
	}
	out = p.output()
	fmt.Sscanf(lastLineWithPrefix(out, "PINGS "), "PINGS %d/", &ok)
	return ok, out
}

// closedHostConnections counts the connections a host namespace closed
// whose remote end is addr: those the accelerated clients made to a host
// listener and closed.
func (l *testLab) closedHostConnections(host string, addr netip.AddrPort) int {
	l.t.Helper()
	n, err := l.Node(host)
	if err != nil {
		l.t.Fatal(err)
	}
	count := 0
	err = n.Do(func() error {
		sockets, err := netlink.SocketDiagTCP(unix.AF_INET)
		for _, s := range sockets {
			remote, _ := netip.AddrFromSlice(s.ID.Destination.To4())
			if closedByClient(s.State) && netip.AddrPortFrom(remote, s.ID.DestinationPort) == addr {
				count++
			}
		}
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return count
}

// closedByClient says whether a TCP state is one after an active close
// (FIN_WAIT1, FIN_WAIT2, TIME_WAIT).
func closedByClient(state uint8) bool { return state >= 4 && state <= 6 }

// waitClosedHostConnections waits (at most 5 s: the server closes its
// end after the client) until host has want closed connections to addr,
// and returns how many it has.
func (l *testLab) waitClosedHostConnections(host string, addr netip.AddrPort, want int) int {
	n := 0
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if n = l.closedHostConnections(host, addr); n >= want || time.Now().After(deadline) {
			return n
		}
	}
}

// waitCount waits (at most 5 s: the server notices a close after the
// client) until p printed text want times, and returns how many it did.
func waitCount(p *program, text string, want int) int {
	n := 0
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n = strings.Count(p.output(), text); n >= want || time.Now().After(deadline) {
			return n
		}
	}
}

func lastLineWithPrefix(out, prefix string) string {
	lines := linesWithPrefix(out, prefix)
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

// TestIntegrationSecureCleanRestartKeepsListeners: a secure router stopped
// cleanly (SIGTERM) and started again keeps serving the accelerated
// listeners made before it stopped: clients from another host and from the
// same host connect and get their echo, and a connection established
// before the stop goes on working. (Issue 9, item 5: all of them got EOF,
// because the clean stop removed the programs and the router's cgroup that
// the listener's connections still needed.)
func TestIntegrationSecureCleanRestartKeepsListeners(t *testing.T) {
	l := newSecureLab(t, "scrs")
	const port, clients = 7403, 5
	server := startHoldServer(l, "h1-c1", "h2", port)
	l.waitForDirectory("h1", l.containerAddr("h1-c1"), port, 10*time.Second)
	before := startHoldClient(l, "h2-c1", "h1-c1", port)
	before.waitFor("CONNECTED", 10*time.Second)

	overlay := netip.AddrPortFrom(netip.MustParseAddr(l.containerAddr("h1-c1")), port)
	listener := hostListener(t, l, "h1", overlay)

	killRouter(t, l, "h1", syscall.SIGTERM)
	restartRouter(t, l, "h1")

	for _, node := range []string{"h2-c2", "h1-c2"} {
		ok, out := pingFrom(l, node, "h1-c1", port, clients)
		if ok != clients {
			t.Errorf("from %s after a clean restart: %d of %d clients got their echo:\n%s", node, ok, clients, out)
		}
		// The server's app saw each client by its overlay address: the
		// connections were accelerated and verified (an unverified one
		// would show a host address, or be dropped by the server's shim).
		if seen := waitCount(server, "SERVER CLOSED "+l.containerAddr(node)+":", clients); seen != clients {
			t.Errorf("the server saw %d connections from %s's overlay address, want %d:\n%s", seen, node, clients, server.output())
		}
		host := strings.SplitN(node, "-", 2)[0]
		if n := l.waitClosedHostConnections(host, listener, clients); n < clients {
			t.Errorf("%s has %d closed host connections to the host listener %s, want %d: not accelerated", host, n, listener, clients)
		}
	}
	if strings.Contains(before.output(), "CLIENT CLOSED") {
		t.Errorf("the connection made before the clean restart ended:\n%s", before.output())
	}
	checkCleanup(t, l, "h1")
}

// checkCleanup: while host sockets the router made are open (a listener),
// a clean stop leaves the programs pinned, guarding them, and
// `slim router --cleanup`, refused while the router runs, removes them.
func checkCleanup(t *testing.T, l *testLab, host string) {
	t.Helper()
	cleanup := func() (string, error) {
		out, err := exec.Command(slimPath, "router", "--config", filepath.Join(l.RouterDir(host), "router.json"), "--cleanup").CombinedOutput()
		return string(out), err
	}
	if out, err := cleanup(); err == nil || !strings.Contains(out, "a router is serving") {
		t.Errorf("--cleanup while the router runs: %v, %s; want a refusal", err, out)
	}
	bpffs, err := secure.BPFFSMount()
	if err != nil {
		t.Fatal(err)
	}
	pins := secure.PinDir(bpffs, secure.RouterID(l.RouterDir(host)))
	killRouter(t, l, host, syscall.SIGTERM)
	if _, err := os.Stat(filepath.Join(pins, "link_connect4")); err != nil {
		t.Errorf("a clean stop with a listener open removed its guards: %v", err)
	}
	out, err := cleanup()
	if err != nil || !strings.Contains(out, "still open") {
		t.Errorf("--cleanup: %v, %s; want it to say that sockets are still open", err, out)
	}
	if _, err := os.Stat(pins); !os.IsNotExist(err) {
		t.Errorf("pins left after --cleanup: %s (%v)", pins, err)
	}
}

func poolholdScript() string { return filepath.Join(repoRoot, "e2e", "testdata", "poolhold.py") }

// serveHostSecret runs a service of the host namespace itself (no Slim)
// on addr that writes a secret to every connection, until the test ends.
func serveHostSecret(t *testing.T, l *testLab, host, addr string) {
	t.Helper()
	ln := listenIn(t, l, host, addr)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Write([]byte("HOST SECRET\n"))
			conn.Close()
		}
	}()
}

// listenIn listens on addr in a host namespace until the test ends.
func listenIn(t *testing.T, l *testLab, host, addr string) net.Listener {
	t.Helper()
	n, err := l.Node(host)
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	err = n.Do(func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, host, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// startRouterOnce starts host's router again (as restartRouter does) and
// waits for it to exit, which it must within 10 s; it returns what the
// router logged and its exit error.
func startRouterOnce(t *testing.T, l *testLab, host string) (string, error) {
	t.Helper()
	dir := l.RouterDir(host)
	n, err := l.Node(host)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(slimPath, "router", "--config", filepath.Join(dir, "router.json"),
		"--secure", "--key-file", l.ClusterKeyPath())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := n.Start(cmd); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		return out.String(), err
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatalf("the router of %s kept running (want it to fail to start):\n%s", host, out.String())
		return "", nil
	}
}

// TestIntegrationSecureFailedStartKeepsGuards: a program in a container
// keeps a spare pool socket, waits for its router to be killed, takes the
// router's peer port with it, so that the restarted router cannot start;
// the failed start must leave the programs of the killed router guarding:
// the program's other pool socket still cannot reach a service of the host
// that is not for containers. (Issue 9, item 1: the failed start removed
// the pinned programs, and the connect read the host's data.)
func TestIntegrationSecureFailedStartKeepsGuards(t *testing.T) {
	l := newSecureLab(t, "sfst")
	const servicePort = 7404
	service := fmt.Sprintf("198.18.0.1:%d", servicePort)
	peerPort := fmt.Sprintf("198.18.0.1:%d", router.DefaultPeerPort)
	serveHostSecret(t, l, "h1", service)
	goFile := filepath.Join(t.TempDir(), "go")
	attacker := l.start("h1-c1", true, "python3", poolholdScript(), goFile,
		strconv.Itoa(router.DefaultPeerPort), "198.18.0.1", strconv.Itoa(servicePort))
	attacker.waitFor("POOLED", 10*time.Second)

	killRouter(t, l, "h1", syscall.SIGKILL)
	touch(t, goFile+".1")
	attacker.waitFor("PEERPORT ", 10*time.Second)
	var held net.Listener
	if !strings.Contains(attacker.output(), "PEERPORT TAKEN") {
		// Pool sockets may not listen on it: a host process holds the
		// port instead, so that the start fails all the same.
		t.Logf("the pool socket could not take the peer port (%s); the test holds it", lastLineWithPrefix(attacker.output(), "PEERPORT "))
		held = listenIn(t, l, "h1", peerPort)
	}
	log, err := startRouterOnce(t, l, "h1")
	if err == nil || !strings.Contains(log, peerPort) {
		t.Fatalf("the router should fail to listen on its peer port %s (%v):\n%s", peerPort, err, log)
	}
	bpffs, err := secure.BPFFSMount()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(secure.PinDir(bpffs, secure.RouterID(l.RouterDir("h1"))), "link_connect4")); err != nil {
		t.Errorf("the failed start removed the killed router's pinned links: %v", err)
	}

	touch(t, goFile+".2")
	attacker.waitFor("RETARGET ", 10*time.Second)
	if got := lastLineWithPrefix(attacker.output(), "RETARGET "); got != "RETARGET REFUSED EPERM" {
		t.Errorf("after the failed start a pool socket reached the host's own service: %q, want RETARGET REFUSED EPERM", got)
	}

	// With the port free again the router starts and serves.
	touch(t, goFile+".3")
	if err := attacker.wait(10 * time.Second); err != nil {
		t.Errorf("attacker: %v\n%s", err, attacker.output())
	}
	if held != nil {
		held.Close()
	}
	restartRouter(t, l, "h1")
	const port = 7405
	startHoldServer(l, "h2-c1", "h1", port)
	if ok, out := pingFrom(l, "h1-c2", "h2-c1", port, 3); ok != 3 {
		t.Errorf("after the restart %d of 3 accelerated clients got their echo:\n%s", ok, out)
	}
}

// waitCgroupEmpty waits (at most 10 s) until no process is left in the
// cgroup where host's router enrolled a container's programs.
func waitCgroupEmpty(t *testing.T, l *testLab, host, container string) {
	t.Helper()
	base, err := secure.CgroupBase(secure.RouterID(l.RouterDir(host)))
	if err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(base, "containers", container, "cgroup.events")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		data, err := os.ReadFile(events)
		if os.IsNotExist(err) || strings.Contains(string(data), "populated 0") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes are still in %s's cgroup after 10 s (%s: %q, %v)", container, events, data, err)
		}
	}
}
