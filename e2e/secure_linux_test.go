package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/internal/testenv"
	"github.com/slimnet/slim/router"
)

// hostileAttacks are the attacks testdata/c/hostile.c makes; each must be
// reported, so that an attack silently left out is noticed.
var hostileAttacks = []string{
	"getsockname", "getpeername", "SO_PEERNAME", "ioctl_SIOCGIFCONF", "ioctl_SIOCGIFADDR", "ioctl_SIOCSIFMTU",
	"SO_BINDTODEVICE", "SO_BINDTOIFINDEX", "SO_MARK", "IP_TRANSPARENT", "IP_FREEBIND",
	"IP_OPTIONS_LSRR", "TCP_REPAIR", "TCP_SAVE_SYN", "second_connect",
	"IP_PKTOPTIONS", "SO_ORIGINAL_DST", "IP_RECVERR", "errqueue_OPT_CMSG", "errqueue_frame", "errqueue_TSONLY",
	"unspec_connect_other", "unspec_connect_overlay", "unspec_bind", "unspec_sendto_fastopen",
}

// hostileAttacksInet6 are the attacks hostile.c adds on AF_INET6 sockets
// (SLIMTEST_INET6=1): options of the IPv6 level.
var hostileAttacksInet6 = []string{"IPV6_TRANSPARENT", "IPV6_FREEBIND", "IPV6_RECVERR", "IPV6_PKTOPTIONS", "IPV6_ADDRFORM"}

var attackLine = regexp.MustCompile(`^ATTACK (\S+): (refused|NOT REFUSED) \((.*)\)$`)

// attack is one ATTACK line of hostile's output.
type attack struct {
	refused bool
	detail  string
}

func parseAttacks(out string) map[string]attack {
	attacks := map[string]attack{}
	for _, line := range strings.Split(out, "\n") {
		if m := attackLine.FindStringSubmatch(line); m != nil {
			attacks[m[1]] = attack{refused: m[2] == "refused", detail: m[3]}
		}
	}
	return attacks
}

// startHostileServer runs `hostile server PORT` under slim exec in node and
// waits until clientHost's router knows the listener.
func startHostileServer(l *testLab, node, clientHost string, port int) *program {
	l.t.Helper()
	server := l.start(node, true, binPath("hostile"), "server", fmt.Sprint(port))
	server.waitFor("LISTENING", 10*time.Second)
	l.waitForDirectory(clientHost, l.containerAddr(node), port, 10*time.Second)
	return server
}

// runHostileClient runs the hostile client in node under slim exec against
// target: re-connects go to h2's router port and to target itself (an
// accelerated listener), binds to h1's wire address. It returns the
// client's output, the host-namespace connections between wire addresses
// seen in host while it ran, and its exit error.
func runHostileClient(l *testLab, node, host, target string) (string, []string, error) {
	l.t.Helper()
	return runHostileClientOf(l, binPath("hostile"), node, host, target)
}

// runHostileClientOf is runHostileClient with the hostile program's
// binary named (built in another way).
func runHostileClientOf(l *testLab, bin, node, host, target string) (string, []string, error) {
	l.t.Helper()
	other := fmt.Sprintf("198.18.0.2:%d", router.DefaultPeerPort)
	l.t.Setenv("HOSTILE_HOLD_MS", "1000") // the client's own run takes milliseconds
	client := l.start(node, true, bin, "client", target, other, target, "198.18.0.1")
	var conns []string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && len(conns) == 0; {
		conns = l.hostConnections(host)
		select {
		case <-client.exited:
			deadline = time.Now()
		case <-time.After(10 * time.Millisecond):
		}
	}
	err := client.wait(90 * time.Second)
	return client.output(), conns, err
}

// TestIntegrationSecureHostileClient: an application in a container
// attacks its own accelerated connection with raw syscalls; secure mode
// refuses every attack, and the server sees only overlay addresses.
func TestIntegrationSecureHostileClient(t *testing.T) {
	secureHostileClient(t, newSecureLab(t, "shc"), 7300)
}

// secureHostileClient runs TestIntegrationSecureHostileClient's attacks
// in l, the server on port.
func secureHostileClient(t *testing.T, l *testLab, port int) {
	enableConntrack(t, l, "h1") // so that SO_ORIGINAL_DST has an answer
	server := startHostileServer(l, "h2-c1", "h1", port)
	target := net.JoinHostPort(l.containerAddr("h2-c1"), fmt.Sprint(port))
	out, conns, err := runHostileClient(l, "h1-c1", "h1", target)
	if err != nil {
		t.Errorf("hostile client: %v", err)
	}
	if a := parseAttacks(out)["errqueue_TSONLY"]; strings.Contains(a.detail, " 0 message(s)") {
		t.Errorf("transmit timestamps alone (OPT_TSONLY) should still reach the application: %s", a.detail)
	}
	if !strings.Contains(out, "DATA ok") || !strings.Contains(out, "ACCEL yes") {
		t.Errorf("data did not echo over an accelerated connection (want DATA ok, ACCEL yes)")
	}
	if len(conns) == 0 {
		t.Error("no connection between the hosts' wire addresses in h1 while the client ran: not accelerated")
	}
	if cookie := netnsCookie(t, l, "h1"); !strings.Contains(out, fmt.Sprintf("ACCEL yes (netns cookie of the fd %d,", cookie)) {
		t.Errorf("the attacked fd is not a socket of h1's namespace (netns cookie %d)", cookie)
	}
	checkAllRefused(t, out)
	if os.Getenv("SLIMTEST_INET6") == "1" {
		checkRefused(t, out, hostileAttacksInet6)
	}
	attacks := parseAttacks(out)
	if a := attacks["getpeername"]; a.detail != target {
		t.Errorf("raw getpeername: %q, want the overlay address %s", a.detail, target)
	}
	client := l.containerAddr("h1-c1")
	if a := attacks["getsockname"]; !strings.HasPrefix(a.detail, client+":") {
		t.Errorf("raw getsockname: %q, want the client's overlay address %s", a.detail, client)
	}
	checkServerSaw(t, server.output(), client)
	// The first connection is the attacked one: the server's raw peer is
	// what the client's raw getsockname says, port included.
	if peers := linesWithPrefix(server.output(), "RAWPEER "); len(peers) > 0 && peers[0] != "RAWPEER "+attacks["getsockname"].detail {
		t.Errorf("server: %q, client's raw getsockname %q", peers[0], attacks["getsockname"].detail)
	}
	t.Logf("client:\n%s\nserver:\n%s", out, server.output())
}

// conntrackRules make the kernel track every connection of a namespace,
// as a host's firewall or NAT does: then SO_ORIGINAL_DST has an answer.
const conntrackRules = `table ip slimtest {
	chain out { type filter hook output priority 0; ct state new counter; }
	chain in { type filter hook input priority 0; ct state new counter; }
}
`

// enableConntrack loads conntrackRules into a lab host's namespace (they
// go with it when the lab is torn down).
func enableConntrack(t *testing.T, l *testLab, host string) {
	t.Helper()
	testenv.Tools(t, "nft")
	rules := filepath.Join(t.TempDir(), "conntrack.nft")
	if err := os.WriteFile(rules, []byte(conntrackRules), 0o644); err != nil {
		t.Fatal(err)
	}
	p := l.start(host, false, "nft", "-f", rules)
	if err := p.wait(10 * time.Second); err != nil {
		t.Fatalf("nft in %s: %v\n%s", host, err, p.output())
	}
}

// netnsCookie is the cookie of node's network namespace (SO_NETNS_COOKIE
// of a socket made there), which hostile prints for the attacked fd.
func netnsCookie(t *testing.T, l *testLab, node string) uint64 {
	t.Helper()
	n, err := l.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	var cookie uint64
	err = n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		cookie, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
		return err
	})
	if err != nil {
		t.Fatalf("netns cookie of %s: %v", node, err)
	}
	return cookie
}

// checkAllRefused wants every attack reported, and refused.
func checkAllRefused(t *testing.T, out string) {
	t.Helper()
	checkRefused(t, out, hostileAttacks)
	for _, line := range linesWithPrefix(out, "SETUP ") {
		t.Errorf("hostile client: %s", line)
	}
}

// checkRefused wants each named attack reported, and refused.
func checkRefused(t *testing.T, out string, names []string) {
	t.Helper()
	attacks := parseAttacks(out)
	for _, name := range names {
		a, ok := attacks[name]
		switch {
		case !ok:
			t.Errorf("attack %s: not reported", name)
		case !a.refused:
			t.Errorf("attack %s: NOT REFUSED (%s)", name, a.detail)
		}
	}
}

// checkServerSaw wants the server's every address to be an overlay one,
// and every peer to be client (the overlay address of the client).
func checkServerSaw(t *testing.T, out, client string) {
	t.Helper()
	if n := len(linesWithPrefix(out, "ACCEPT ")); n < 5 {
		t.Errorf("server accepted %d connections, want at least 5 (the client makes 5)", n)
	}
	for _, prefix := range []string{"ACCEPT ", "RAWPEER ", "RAWSOCK "} {
		for _, line := range linesWithPrefix(out, prefix) {
			addr, err := netip.ParseAddrPort(strings.TrimPrefix(line, prefix))
			switch {
			case err != nil:
				t.Errorf("server: %q: %v", line, err)
			case !netip.MustParsePrefix("198.19.0.0/16").Contains(addr.Addr()):
				t.Errorf("server: %q is not an overlay address", line)
			case prefix != "RAWSOCK " && addr.Addr().String() != client:
				t.Errorf("server: %q, want the client's overlay address %s", line, client)
			}
		}
	}
}

// forgeScript connects from a host namespace straight to a Slim host
// listener and sends a preamble (preload/connect.c slim_preamble_build)
// claiming to be another container: once with a plain connect, once with
// the preamble in a Fast Open SYN, as the shim sends it. Every wait is
// bounded by 2 s. argv: HOST_LISTENER CLAIMED_CLIENT SERVER_OVERLAY.
const forgeScript = `
import socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
cip, cport = sys.argv[2].rsplit(":", 1)
sip, sport = sys.argv[3].rsplit(":", 1)
pre = (struct.pack("<I", 0x504d4c53) + bytes([1, 0, 0, 0]) +
       socket.inet_aton(cip) + struct.pack("!H", int(cport)) +
       socket.inet_aton(sip) + struct.pack("!H", int(sport)))
addr = (host, int(port))
def plain():
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(addr)
        print("plain: CONNECTED", flush=True)
        s.sendall(pre + b"forged\n")
        print("plain: echo %r" % s.recv(100), flush=True)
    except OSError as e:
        print("plain: %r" % e, flush=True)
    s.close()
def fastopen():
    s = socket.socket()
    tv = struct.pack("ll", 2, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    try:
        n = s.sendto(pre + b"forged\n", socket.MSG_FASTOPEN, addr)
        print("fastopen: SENT %d" % n, flush=True)
        print("fastopen: echo %r" % s.recv(100), flush=True)
    except OSError as e:
        print("fastopen: %r" % e, flush=True)
    s.close()
plain()
fastopen()
print("DONE", flush=True)
`

// forgedPort is the port of the identity the forging client claims (h1-c1
// on it), to recognize its connection in the server's ACCEPT lines.
const forgedPort = 40000

// hostListener asks host's router for the host address of the accelerated
// listener on overlay.
func hostListener(t *testing.T, l *testLab, host string, overlay netip.AddrPort) netip.AddrPort {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap, err := control.Fetch(ctx, filepath.Join(l.RouterDir(host), "control.sock"))
	if err != nil {
		t.Fatalf("control API of %s: %v", host, err)
	}
	for _, ln := range snap.Listeners {
		if ln.Overlay == overlay || (ln.Overlay.Port() == overlay.Port() && ln.Overlay.Addr().IsUnspecified()) {
			return ln.Host
		}
	}
	t.Fatalf("the router of %s lists no listener for %s: %+v", host, overlay, snap.Listeners)
	return netip.AddrPort{}
}

// secureEvents are what the programs of host's router counted.
func secureEvents(t *testing.T, l *testLab, host string) control.SecureEvents {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap, err := control.Fetch(ctx, filepath.Join(l.RouterDir(host), "control.sock"))
	if err != nil {
		t.Fatalf("control API of %s: %v", host, err)
	}
	if snap.Router.Secure == nil {
		t.Fatalf("the router of %s reports no secure-mode counters", host)
	}
	return *snap.Router.Secure
}

// forge runs forgeScript in the host namespace h1 against the server in
// h2-c1 on port and returns its output.
func forge(t *testing.T, l *testLab, port int) string {
	t.Helper()
	overlay := netip.AddrPortFrom(netip.MustParseAddr(l.containerAddr("h2-c1")), uint16(port))
	hostAddr := hostListener(t, l, "h2", overlay)
	claim := fmt.Sprintf("%s:%d", l.containerAddr("h1-c1"), forgedPort)
	p := l.start("h1", false, "python3", "-c", forgeScript, hostAddr.String(), claim, overlay.String())
	if err := p.wait(15 * time.Second); err != nil {
		t.Fatalf("forging client: %v\n%s", err, p.output())
	}
	t.Logf("forging client (%s claiming %s):\n%s", hostAddr, claim, p.output())
	return p.output()
}

// TestIntegrationSecureForgedIdentity: a host process that connects
// straight to a container's host listener and claims to be a container
// never reaches the application (its SYN has no valid MAC and is dropped);
// a legitimate accelerated client still gets through.
func TestIntegrationSecureForgedIdentity(t *testing.T) {
	secureForgedIdentity(t, newSecureLab(t, "sfi"), 7310)
}

// secureForgedIdentity runs TestIntegrationSecureForgedIdentity in l, the
// server on port.
func secureForgedIdentity(t *testing.T, l *testLab, port int) {
	server := startHostileServer(l, "h2-c1", "h1", port)
	out := forge(t, l, port)
	if strings.Contains(out, "CONNECTED") || strings.Contains(out, "SENT") {
		t.Errorf("the forged client's handshake completed (its SYN was not dropped):\n%s", out)
	}
	time.Sleep(time.Second) // the forging client took at least 2 s itself
	if accepts := linesWithPrefix(server.output(), "ACCEPT "); len(accepts) > 0 {
		t.Fatalf("the server accepted a forged connection: %v\n%s", accepts, server.output())
	}

	target := net.JoinHostPort(l.containerAddr("h2-c1"), fmt.Sprint(port))
	legit := l.start("h1-c1", true, "python3", "-c", legitScript, target)
	if err := legit.wait(15 * time.Second); err != nil || !strings.Contains(legit.output(), "ECHO ok") {
		t.Fatalf("legitimate client: %v\n%s\nserver:\n%s", err, legit.output(), server.output())
	}
	server.waitFor("ACCEPT "+l.containerAddr("h1-c1")+":", 5*time.Second)
	checkServerSawOne(t, server.output(), l.containerAddr("h1-c1"))
}

// checkServerSawOne is checkServerSaw for a single connection.
func checkServerSawOne(t *testing.T, out, client string) {
	t.Helper()
	if n := len(linesWithPrefix(out, "ACCEPT ")); n != 1 {
		t.Errorf("server accepted %d connections, want 1:\n%s", n, out)
	}
	for _, line := range linesWithPrefix(out, "RAWPEER ") {
		if !strings.HasPrefix(line, "RAWPEER "+client+":") {
			t.Errorf("server: %q, want the client's overlay address %s", line, client)
		}
	}
}

// legitScript is an ordinary client (run under slim exec): echo one line.
const legitScript = `
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
s.sendall(b"legit\n")
got = b""
while not got.endswith(b"\n"):
    b = s.recv(100)
    if not b:
        break
    got += b
print("ECHO ok" if got == b"legit\n" else "ECHO bad %r" % got, flush=True)
`

// TestIntegrationSecureAttacksAreReal runs the same attacks without secure
// mode, to show they are real: the raw getpeername shows the host address,
// and a forged preamble from the host namespace reaches the application.
func TestIntegrationSecureAttacksAreReal(t *testing.T) {
	l := newLab(t, "sar")
	const port = 7320
	server := startHostileServer(l, "h2-c1", "h1", port)
	target := net.JoinHostPort(l.containerAddr("h2-c1"), fmt.Sprint(port))
	out, _, err := runHostileClient(l, "h1-c1", "h1", target)
	if err == nil {
		t.Errorf("the hostile client succeeded without secure mode:\n%s", out)
	}
	a, ok := parseAttacks(out)["getpeername"]
	if !ok || a.refused || !strings.HasPrefix(a.detail, "198.18.") {
		t.Errorf("raw getpeername without secure mode: %+v, want a host address, NOT REFUSED:\n%s", a, out)
	}
	t.Logf("hostile client without secure mode:\n%s", out)
	forge(t, l, port)
	forged := fmt.Sprintf("ACCEPT %s:%d", l.containerAddr("h1-c1"), forgedPort)
	server.waitFor(forged, 5*time.Second)
	checkPlainSquat(t, l, 7342)
}

// checkPlainSquat: without secure mode nothing guards pool sockets: a
// program in a container binds one to a port of its host and listens, and
// a host service then finds the port taken (docs/secure.md says so).
func checkPlainSquat(t *testing.T, l *testLab, port int) {
	t.Helper()
	squat := l.start("h1-c1", true, binPath("intruder"), "squat", fmt.Sprint(port))
	squat.waitFor("HOLDING", 20*time.Second)
	if a := parseAttacks(squat.output())[fmt.Sprintf("bind_%d", port)]; a.refused {
		t.Errorf("plain mode: %s, want the bind and the listen to go through", a.detail)
	}
	h1, err := l.Node("h1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.Do(func() error { return bindPlain(port) }); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("plain mode: a host service binding port %d: %v, want EADDRINUSE", port, err)
	}
}
