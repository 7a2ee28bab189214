package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// semanticPrograms are the C programs of testdata/c that check one area of
// socket behaviour each, client and server side.
var semanticPrograms = []string{
	"connect_block", "connect_nonblock", "epoll", "pollselect", "accept",
	"sockopts", "names", "dupclose", "threads", "forkexec", "passconn",
}

// pairings: where the client and server run and which sides are accelerated.
var pairings = []struct {
	name                string
	client, server      string
	slimClient, slimSrv bool
}{
	{"cross-host", "h2-c1", "h1-c1", true, true},
	{"same-host", "h1-c2", "h1-c1", true, true},
	{"plain-client", "h2-c1", "h1-c1", false, true},
	{"plain-server", "h2-c1", "h1-c1", true, false},
}

var addrLine = regexp.MustCompile(`(?m)^addr .*$`)

// maxStrayOverlayBytes bounds what an accelerated semantics run may send
// over the overlay: handshakes to refused ports and the few sockets the
// shim deliberately leaves alone, never the programs' bulk echoes (1 MiB).
const maxStrayOverlayBytes = 256 << 10

func TestIntegrationSemantics(t *testing.T) {
	l := newLab(t, "sem")
	port := 5000 // below the lab's ephemeral range (10000-65000)
	for _, prog := range semanticPrograms {
		for _, pair := range pairings {
			port += 10
			t.Run(prog+"/"+pair.name, func(t *testing.T) {
				l.t = t
				runPair(t, l, prog, pair.client, pair.server, pair.slimClient, pair.slimSrv, port)
			})
		}
	}
}

func runPair(t *testing.T, l *testLab, prog, clientNode, serverNode string, slimClient, slimServer bool, port int) {
	runPairOf(t, l, binPath(prog), binPath(prog), clientNode, serverNode, slimClient, slimServer, port)
}

// runPairOf is runPair with the client's and the server's binaries named
// (the same program, built in different ways).
func runPairOf(t *testing.T, l *testLab, clientBin, serverBin, clientNode, serverNode string, slimClient, slimServer bool, port int) {
	runPairArgv(t, l, []string{clientBin}, []string{serverBin}, clientNode, serverNode, slimClient, slimServer, port)
}

// runPairArgv is runPairOf with the command lines that start the client
// and the server given (a binary, or env VAR=VALUE and a binary).
func runPairArgv(t *testing.T, l *testLab, clientCmd, serverCmd []string, clientNode, serverNode string, slimClient, slimServer bool, port int) {
	serverAddr := l.containerAddr(serverNode)
	server := l.start(serverNode, slimServer, append(slices.Clone(serverCmd), "server", serverAddr, fmt.Sprint(port))...)
	server.waitFor("listening on", 10*time.Second)
	clientHost, _ := l.HostOf(clientNode)
	serverHost, _ := l.HostOf(serverNode)
	accelerated := slimClient && slimServer && clientHost.Name != serverHost.Name
	if accelerated {
		l.waitForDirectory(clientHost.Name, serverAddr, port, 5*time.Second)
	}
	before := l.vxlanBytes("h1")
	client := l.start(clientNode, slimClient, append(slices.Clone(clientCmd), "client", serverAddr, fmt.Sprint(port))...)
	err := client.wait(60 * time.Second)
	out := client.output()
	// A few checks go over the overlay on purpose (refused ports, sockets
	// the shim leaves alone); bulk data must not.
	if crossed := l.vxlanBytes("h1") - before; accelerated && crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device between two Slim containers", crossed)
	}
	if err != nil || strings.Contains(out, "FAIL") {
		t.Errorf("client failed (%v):\n%s\nserver:\n%s", err, out, server.output())
	}
	server.stop()
	if strings.Contains(server.output(), "FAIL") {
		t.Errorf("server-side checks failed:\n%s", server.output())
	}
	for _, line := range addrLine.FindAllString(out+server.output(), -1) {
		if strings.Contains(line, "198.18.") {
			t.Errorf("a host address reached the application: %s", line)
		}
	}
}

// TestIntegrationSemanticsInOneContainer runs each program's client and
// server in one process under slim exec: on the container's own overlay
// address (accelerated through its own host listener) and on loopback
// (outside the overlay: the shim must leave it alone).
func TestIntegrationSemanticsInOneContainer(t *testing.T) {
	l := newLab(t, "one")
	for _, prog := range semanticPrograms {
		for _, addr := range []string{l.containerAddr("h1-c1"), "127.0.0.1"} {
			t.Run(prog+"/"+addr, func(t *testing.T) {
				l.t = t
				p := l.start("h1-c1", true, binPath(prog), "selftest", addr)
				err := p.wait(90 * time.Second)
				out := p.output()
				if err != nil || strings.Contains(out, "FAIL") {
					t.Errorf("selftest failed (%v):\n%s", err, out)
				}
				for _, line := range addrLine.FindAllString(out, -1) {
					if strings.Contains(line, "198.18.") {
						t.Errorf("a host address reached the application: %s", line)
					}
				}
			})
		}
	}
}
