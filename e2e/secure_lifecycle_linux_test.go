package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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
		if seen := strings.Count(server.output(), "SERVER CLOSED "+l.containerAddr(node)+":"); seen != clients {
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
}
