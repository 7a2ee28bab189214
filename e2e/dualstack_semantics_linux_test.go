package e2e

import (
	"strings"
	"testing"
	"time"
)

// The C semantics suite on AF_INET6 sockets that carry IPv4
// (SLIMTEST_INET6=1, testdata/c/common.h): the server listens on ::
// (dual-stack), the client connects to the v4-mapped overlay address, and
// every address either side is shown must be the kernel's v4-mapped form.
// Mixed pairs put an AF_INET6 end against an AF_INET one.

// inet6 is the command prefix that makes a program's sockets AF_INET6.
var inet6 = []string{"env", "SLIMTEST_INET6=1"}

var dualStackPairings = []struct {
	name                   string
	client, server         string
	slimClient, slimServer bool
	client6, server6       bool
}{
	{"cross-host-v6-v6", "h2-c1", "h1-c1", true, true, true, true},
	{"same-host-v6-v6", "h1-c2", "h1-c1", true, true, true, true},
	{"cross-host-v4-client", "h2-c1", "h1-c1", true, true, false, true},
	{"cross-host-v4-server", "h2-c1", "h1-c1", true, true, true, false},
	{"plain-v4-client", "h2-c1", "h1-c1", false, true, false, true},
	{"plain-v6-server", "h2-c1", "h1-c1", true, false, true, true},
}

func TestIntegrationSemanticsDualStack(t *testing.T) {
	l := newLab(t, "dss")
	port := 5000
	for _, prog := range semanticPrograms {
		for _, pair := range dualStackPairings {
			port += 10
			t.Run(prog+"/"+pair.name, func(t *testing.T) {
				l.t = t
				client, server := []string{binPath(prog)}, []string{binPath(prog)}
				if pair.client6 {
					client = append(inet6Cmd(), client...)
				}
				if pair.server6 {
					server = append(inet6Cmd(), server...)
				}
				runPairArgv(t, l, client, server, pair.client, pair.server, pair.slimClient, pair.slimServer, port)
			})
		}
	}
}

// TestIntegrationSemanticsDualStackInOneContainer: each program's selftest
// with AF_INET6 sockets in one process under slim exec, its listener on ::,
// its clients to the overlay address (accelerated through its own host
// listener) and to loopback (left alone).
func TestIntegrationSemanticsDualStackInOneContainer(t *testing.T) {
	l := newLab(t, "dsc")
	for _, prog := range semanticPrograms {
		for _, addr := range []string{l.containerAddr("h1-c1"), "127.0.0.1"} {
			t.Run(prog+"/"+addr, func(t *testing.T) {
				l.t = t
				p := l.start("h1-c1", true, append(inet6Cmd(), binPath(prog), "selftest", addr)...)
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

// inet6Cmd is a fresh copy of inet6, to append to.
func inet6Cmd() []string { return append([]string(nil), inet6...) }
