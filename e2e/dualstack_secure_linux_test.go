package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/router"
)

// TestIntegrationSecurePolicyCoversMappedConnects: a deny rule holds for
// an AF_INET6 socket that connects to the denied container's v4-mapped
// overlay address (connect, and sendto with MSG_FASTOPEN), as for an
// AF_INET one. The kernel runs the cgroup connect6 hook, not connect4, for
// those: without secure mode's connect6 program they went through. A
// container the rule does not name connects all three ways.
func TestIntegrationSecurePolicyCoversMappedConnects(t *testing.T) {
	l := newSecureLab(t, "dsp")
	const port = 7410
	target := l.containerAddr("h2-c2")
	plain := l.start("h2-c2", false, "python3", holdScript(), "server", strconv.Itoa(port))
	plain.waitFor("LISTENING", 10*time.Second)
	api := policyClient(t, l, "h1")
	if _, _, err := api.PolicyAdd(context.Background(), fmt.Sprintf("deny from container h1-c1 to %s/32", target), 0); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(repoRoot, "e2e", "testdata", "v6connect.py")
	ways := []string{"inet", "inet6-mapped", "inet6-mapped-fastopen"}
	for _, c := range []struct {
		node   string
		denied bool
	}{{"h1-c1", true}, {"h1-c2", false}} {
		p := l.start(c.node, true, "python3", script, target, strconv.Itoa(port))
		if err := p.wait(30 * time.Second); err != nil {
			t.Fatalf("%s: %v\n%s", c.node, err, p.output())
		}
		out := p.output()
		for _, way := range ways {
			want := "WAY " + way + ": connected"
			if c.denied {
				want = "WAY " + way + ": refused ECONNREFUSED"
				if !strings.Contains(out, want) && strings.Contains(out, "WAY "+way+": refused EPERM") {
					want = "WAY " + way + ": refused EPERM" // sendto: the shim does not see it
				}
			}
			if !strings.Contains(out, want) {
				t.Errorf("%s (denied %v): want %q:\n%s", c.node, c.denied, want, out)
			}
		}
	}
}

// TestIntegrationSecureIntruderInet6: a program slim exec started (so
// enrolled) asks the router itself for AF_INET6 pool sockets and for a
// host listener for a dual-stack listener, which secure mode hands out
// now, and attacks them with raw calls: a connect to a peer router's
// address v4-mapped, to an IPv6 address, to an overlay address with no
// accelerated listener; a bind to the host's address v4-mapped and to a
// port outside the pool's range; IPV6_V6ONLY on; raw getsockname on both
// kinds. Every one is refused by the *6 programs.
func TestIntegrationSecureIntruderInet6(t *testing.T) {
	l := newSecureLab(t, "dsq")
	attacks, out := runIntruder(t, l, "h1-c1", slimPath, "exec", "--", binPath("intruder"), "inet6",
		"198.18.0.2", strconv.Itoa(int(router.DefaultPeerPort)), "198.18.0.1", l.containerAddr("h2-c1"))
	wantRefused(t, "AF_INET6 host sockets in secure mode", attacks, out,
		"inet6_pool_getsockname", "inet6_connect_mapped_host", "inet6_connect_ipv6", "inet6_connect_no_listener",
		"inet6_bind_mapped_host", "inet6_bind_low_port", "inet6_v6only",
		"inet6_listener_getsockname", "inet6_listener_rebind")
	for _, line := range linesWithPrefix(out, "SETUP ") {
		t.Errorf("intruder: %s", line)
	}
	t.Logf("intruder:\n%s", out)
}

// TestIntegrationSecureHostileClientInet6 is TestIntegrationSecureHostileClient
// with AF_INET6 sockets carrying IPv4 on both sides (SLIMTEST_INET6=1: the
// server listens on ::, the client connects v4-mapped): its host sockets
// are AF_INET6 ones, and every raw attack, with v4-mapped addresses, and
// those of the IPv6 level (IPV6_ADDRFORM, IPV6_RECVPKTINFO ...), is
// refused; the server sees only overlay addresses.
func TestIntegrationSecureHostileClientInet6(t *testing.T) {
	l := newSecureLab(t, "wvh")
	t.Setenv("SLIMTEST_INET6", "1") // for the programs the lab starts
	secureHostileClient(t, l, 7320)
}

// TestIntegrationSecureForgedIdentityInet6: a client in a host namespace
// that connects straight to the AF_INET6 host listener of a dual-stack
// server with a forged preamble is dropped at its SYN (no MAC), as for an
// AF_INET one; a legitimate client gets through, seen by its overlay
// address.
func TestIntegrationSecureForgedIdentityInet6(t *testing.T) {
	l := newSecureLab(t, "wvf")
	t.Setenv("SLIMTEST_INET6", "1")
	secureForgedIdentity(t, l, 7330)
}

// TestIntegrationSecureSemanticsDualStack runs the C semantics suite on
// AF_INET6 sockets carrying IPv4 (TestIntegrationSemanticsDualStack's
// pairs with both sides under slim exec) in secure mode: each program's
// checks pass and, across hosts, the VXLAN device stays flat (runPairArgv):
// the *6 programs guard the AF_INET6 host sockets without taking any
// connection off the host path.
func TestIntegrationSecureSemanticsDualStack(t *testing.T) {
	l := newSecureLab(t, "wvs")
	port := 5400
	for _, prog := range semanticPrograms {
		for _, pair := range dualStackPairings {
			if !pair.slimClient || !pair.slimServer {
				continue
			}
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
				runPairArgv(t, l, client, server, pair.client, pair.server, true, true, port)
			})
		}
	}
}

// TestIntegrationSecurePolicyRevokesInet6: a rule added while AF_INET6
// connections (a dual-stack server, clients connecting v4-mapped) are open
// tears down the one it denies on both ends: the router's sock_diag dump
// covers AF_INET6 host sockets, whose state connect6 wrote. The allowed
// one stays; a new connect it denies fails at once with ECONNREFUSED.
func TestIntegrationSecurePolicyRevokesInet6(t *testing.T) {
	l := newSecureLab(t, "wvr")
	t.Setenv("HOLD_INET6", "1") // for the programs the lab starts
	const port = 7440
	server := startHoldServer(l, "h2-c1", "h1", port)
	denied := startHoldClient(l, "h1-c1", "h2-c1", port)
	allowed := startHoldClient(l, "h1-c2", "h2-c1", port)
	denied.waitFor("CONNECTED", 10*time.Second)
	allowed.waitFor("CONNECTED", 10*time.Second)
	l.requireListeningIPv6("h2-c1", port)
	if conns := l.hostConnections("h1"); len(conns) < 2 {
		t.Fatalf("want both connections accelerated (host connections in h1: %v)", conns)
	}

	api := policyClient(t, l, "h1")
	rule := fmt.Sprintf("deny from container h1-c1 to %s/32 port %d", l.containerAddr("h2-c1"), port)
	if _, _, err := api.PolicyAdd(context.Background(), rule, 0); err != nil {
		t.Fatal(err)
	}
	denied.waitFor("CLIENT CLOSED", 5*time.Second)
	if reason, _ := closedAt(t, denied); reason != "ECONNABORTED" && reason != "ECONNRESET" && reason != "EOF" {
		t.Errorf("revoked client saw %s, want a reset or abort", reason)
	}
	server.waitFor("SERVER CLOSED "+l.containerAddr("h1-c1"), 2*time.Second)
	if strings.Contains(allowed.output(), "CLIENT CLOSED") {
		t.Fatalf("the allowed connection was torn down too:\n%s", allowed.output())
	}
	again := startHoldClient(l, "h1-c1", "h2-c1", port)
	again.waitFor("CONNECT FAILED ECONNREFUSED", 5*time.Second)
}

// TestIntegrationSecurePoolSquatInet6: a program in a container makes an
// AF_INET6 pool socket listen without a bind (the kernel gives it an
// ephemeral port on ::, dual-stack). Nothing reaches it from the host: an
// IPv4 SYN is dropped by ingress (not a Slim host listener), an IPv6 one
// (from ::1, IPv6 turned on for the host's loopback) by ingress6, which
// drops every IPv6 packet to a host socket the router made.
func TestIntegrationSecurePoolSquatInet6(t *testing.T) {
	l := newSecureLab(t, "wvq")
	h1, err := l.Node("h1")
	if err != nil {
		t.Fatal(err)
	}
	enableLoopbackIPv6(t, l, "h1")
	t.Setenv("INTRUDER_HOLD_MS", "20000")
	p := l.start("h1-c1", true, binPath("intruder"), "squat6")
	p.waitFor("HOLDING", 20*time.Second)
	line := linesWithPrefix(p.output(), "UNBOUND_LISTENER6 ")
	if len(line) != 1 {
		t.Fatalf("no UNBOUND_LISTENER6 line:\n%s", p.output())
	}
	port := strings.TrimPrefix(line[0], "UNBOUND_LISTENER6 ")
	for _, c := range []struct{ network, addr string }{
		{"tcp4", net.JoinHostPort(h1.Addr.String(), port)},
		{"tcp6", net.JoinHostPort("::1", port)},
	} {
		err := h1.Do(func() error {
			conn, err := net.DialTimeout(c.network, c.addr, time.Second)
			if err == nil {
				conn.Close()
			}
			return err
		})
		if err == nil {
			t.Errorf("a host process connected to %s, an AF_INET6 pool socket a container made listen", c.addr)
		}
		t.Logf("connecting from h1 to the pool socket listening on %s: %v", c.addr, err)
	}
}
