package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	redialLine = regexp.MustCompile(`(?m)^redial ok=(\d+) retries=(\d+) timeouts=(\d+)$`)
	cycleLine  = regexp.MustCompile(`(?m)^cycle \d+ fd (-?\d+)$`)
)

// TestIntegrationSupervisedGoNoDoorbell: a supervised Go server that
// waits in its netpoller gets its host connections without doorbells
// (the host listener is registered in its epoll instance under its
// listener's number), also across closing its listener and listening
// again on the same port, at the same fd number: every client reaches it
// accelerated, none waits for a wake-up that never comes, and the
// server's container makes no loopback connection to the listener (each
// doorbell is one: its network namespace's TCP ActiveOpens counter).
func TestIntegrationSupervisedGoNoDoorbell(t *testing.T) {
	l := newLab(t, "sfa")
	b := buildSupervised(t)
	const cycles, per = 5, 40
	addr := l.containerAddr("h1-c1") + ":7700"
	// SLIM_DEBUG for the supervisor's account, should it fail.
	server := l.start("h1-c1", false, "env", "SLIM_DEBUG=1", slimPath, "exec", "--", b.goStatic, "relisten", addr,
		strconv.Itoa(cycles), strconv.Itoa(per))
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), 7700, 5*time.Second)
	opens := l.tcpActiveOpens("h1-c1")
	before := l.vxlanBytes("h1")
	client := l.start("h2-c1", true, b.goStatic, "redial", addr, strconv.Itoa(cycles*per))
	clientErr := client.wait(120 * time.Second)
	serverErr := server.wait(10 * time.Second)
	crossed := l.vxlanBytes("h1") - before
	opens = l.tcpActiveOpens("h1-c1") - opens
	m := redialLine.FindStringSubmatch(client.output())
	if clientErr != nil || serverErr != nil || m == nil || !strings.Contains(server.output(), "relisten done") {
		t.Fatalf("client (%v):\n%s\nserver (%v):\n%s", clientErr, client.output(), serverErr, tail(server.output(), 60))
	}
	t.Logf("%s; %d loopback connections in the server's container, %d bytes over VXLAN", m[0], opens, crossed)
	if m[3] != "0" {
		t.Errorf("%s HELLO lines did not come within 5 s: clients waited in a host listener nobody woke the server for", m[3])
	}
	fds := map[string]bool{}
	for _, c := range cycleLine.FindAllStringSubmatch(server.output(), -1) {
		fds[c[1]] = true
	}
	if len(fds) != 1 {
		t.Errorf("the server's listeners were not all at one fd number (%v): the test wants it reused", fds)
	}
	// A few doorbells are allowed: a host connection may come in before
	// the program's first accept on a new listener.
	if opens > cycles*2 {
		t.Errorf("the server's container made %d loopback connections (doorbells) for %d accelerated clients", opens, cycles*per)
	}
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device for %d supervised connections", crossed, cycles*per)
	}
	checkSupervised(t, client)
}

// tcpActiveOpens reads the TCP ActiveOpens counter of node's network
// namespace (/proc/net/snmp read from inside it).
func (l *testLab) tcpActiveOpens(node string) int {
	l.t.Helper()
	p := l.start(node, false, "cat", "/proc/net/snmp")
	if err := p.wait(10 * time.Second); err != nil {
		l.t.Fatalf("read /proc/net/snmp in %s: %v", node, err)
	}
	var header []string
	for _, line := range strings.Split(p.output(), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Tcp:" {
			continue
		}
		if header == nil {
			header = fields
			continue
		}
		for i, name := range header {
			if name == "ActiveOpens" && i < len(fields) {
				n, err := strconv.Atoi(fields[i])
				if err != nil {
					l.t.Fatalf("/proc/net/snmp in %s: %q", node, line)
				}
				return n
			}
		}
	}
	l.t.Fatalf("/proc/net/snmp in %s: no Tcp ActiveOpens:\n%s", node, p.output())
	return 0
}
