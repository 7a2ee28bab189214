package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// AF_INET6 sockets that carry IPv4 under the supervisor (issue 13): Go's
// net.Listen("tcp", ":port"), the default of most Go services, makes a
// dual-stack AF_INET6 listener; a Go dialer with an IPv6 local address
// dials IPv4 destinations with AF_INET6 sockets (v4-mapped).

// TestIntegrationSupervisedGoDualStack: a static Go net/http server
// listening on ":port" (dual-stack), reached across hosts by static Go
// clients under Slim, one with AF_INET sockets, one with AF_INET6 sockets
// to the v4-mapped address, each accelerated (VXLAN flat, the AF_INET6
// client's socket still AF_INET6 after the swap), both sides seeing
// overlay addresses; clients not under Slim still reach it.
func TestIntegrationSupervisedGoDualStack(t *testing.T) {
	l := newLab(t, "xsa")
	b := buildSupervised(t)
	const port = 8090
	addr := fmt.Sprintf("%s:%d", l.containerAddr("h1-c1"), port)
	server := l.start("h1-c1", true, b.goStatic, "serve", fmt.Sprintf(":%d", port), "tcp")
	server.waitFor("listening on", 10*time.Second)
	l.requireListeningIPv6("h1-c1", port)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), port, 5*time.Second)

	for _, client := range []struct{ name, from string }{{"AF_INET client", ""}, {"AF_INET6 client", "from6"}} {
		t.Run(client.name, func(t *testing.T) {
			l.t = t
			var options []string
			if client.from != "" {
				options = []string{client.from}
			}
			out := supervisedGet(t, l, b.goStatic, addr, server, options...)
			if client.from != "" && (!strings.Contains(out, "domain=10") || strings.Contains(out, "domain=2")) {
				t.Errorf("the client's sockets are not all AF_INET6 (domain=10) after the swap:\n%s", out)
			}
		})
	}
	t.Run("plain clients", func(t *testing.T) {
		l.t = t
		plainClientsReach(t, l, b.goStatic, addr)
	})
	checkSupervised(t, server)
}

// TestIntegrationSecureSupervisedGoDualStack: in secure mode a supervised
// Go server on ":port" (a dual-stack AF_INET6 listener) is accelerated for
// a supervised Go client, the router's *6 programs guarding its AF_INET6
// host sockets, and the supervisor says nothing about leaving it alone.
func TestIntegrationSecureSupervisedGoDualStack(t *testing.T) {
	l := newSecureLab(t, "xsb")
	b := buildSupervised(t)
	const port = 8091
	addr := fmt.Sprintf("%s:%d", l.containerAddr("h1-c1"), port)
	t.Setenv("SLIM_DEBUG", "1")
	server := l.start("h1-c1", true, b.goStatic, "serve", fmt.Sprintf(":%d", port), "tcp")
	server.waitFor("listening on", 10*time.Second)
	l.requireListeningIPv6("h1-c1", port)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), port, 10*time.Second)
	vxBefore := l.vxlanBytes("h1")
	p := l.start("h2-c1", true, b.goStatic, "get", "http://"+addr+"/big", "5")
	if err := p.wait(60 * time.Second); err != nil || !strings.Contains(p.output(), "done 5") {
		t.Fatalf("client: %v\n%s\nserver:\n%s", err, p.output(), tail(server.output(), 20))
	}
	if crossed := l.vxlanBytes("h1") - vxBefore; crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device for 5 MiB: not accelerated", crossed)
	}
	if strings.Contains(server.output(), "AF_INET6 socket in secure mode") {
		t.Errorf("the supervisor left the AF_INET6 listener alone:\n%s", server.output())
	}
	checkSupervised(t, server)
}
