package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
)

// IPv4 carried by AF_INET6 sockets: servers that listen with their
// defaults on :: (dual-stack), and clients whose AF_INET6 socket connects
// to a v4-mapped overlay address, are accelerated like AF_INET ones, with
// the VXLAN device flat. Each test checks that the server really listens
// on an AF_INET6 socket (the kernel's tcp6 table), so it would have gone
// over the overlay before the shim carried these sockets.

// TestIntegrationDualStackIperf3: `iperf3 -s` without -B listens on ::
// (dual-stack); clients by the server's IPv4 overlay address and by its
// v4-mapped form.
func TestIntegrationDualStackIperf3(t *testing.T) {
	dualStackIperf3(t, newLab(t, "dsi"))
}

// dualStackIperf3 runs TestIntegrationDualStackIperf3's transfers in l.
func dualStackIperf3(t *testing.T, l *testLab) {
	addr := l.containerAddr("h1-c1")
	for i, target := range []string{addr, "::ffff:" + addr} {
		port := 6500 + i
		t.Run(target, func(t *testing.T) {
			l.t = t
			server := l.start("h1-c1", true, "iperf3", "--forceflush", "-s", "-1", "-p", fmt.Sprint(port))
			server.waitFor("Server listening", 10*time.Second)
			l.requireListeningIPv6("h1-c1", port)
			l.waitForDirectory("h2", addr, port, 10*time.Second)
			before := l.vxlanBytes("h1")
			client := l.start("h2-c1", true, "iperf3", "-c", target, "-p", fmt.Sprint(port), "-n", fmt.Sprint(transferBytes))
			if err := client.wait(60 * time.Second); err != nil {
				t.Fatalf("iperf3 client: %v\n%s\nserver:\n%s", err, client.output(), server.output())
			}
			if err := server.wait(10 * time.Second); err != nil {
				t.Fatalf("iperf3 server: %v\n%s", err, server.output())
			}
			crossed := l.vxlanBytes("h1") - before
			if crossed > 1<<20 {
				t.Errorf("VXLAN carried %d bytes of a %d-byte transfer to a dual-stack iperf3 -s: not accelerated", crossed, transferBytes)
			}
			out := client.output() + server.output()
			if strings.Contains(out, "198.18.") {
				t.Errorf("iperf3 reported a host address:\n%s", out)
			}
		})
	}
}

// TestIntegrationDualStackNginx: nginx with `listen [::]:8080
// ipv6only=off` (one dual-stack socket), under curl and wrk by the
// server's IPv4 overlay address, across hosts and on one host. nginx's
// plain `listen [::]:8080` is IPV6_V6ONLY (its default): it carries no
// IPv4, is left alone and counted as an "ipv6" fallback.
func TestIntegrationDualStackNginx(t *testing.T) {
	for _, tool := range []string{"nginx", "curl", "wrk"} {
		requireTool(t, tool)
	}
	l := newLab(t, "dsn")
	addr := l.containerAddr("h1-c1")
	const port = 8080
	dir := sharedTempDir(t)
	writeNginxConfig(t, dir, fmt.Sprintf("[::]:%d ipv6only=off", port))
	server := l.start("h1-c1", true, "nginx", "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"))
	l.waitForPort(server, "h1-c2", fmt.Sprintf("%s:%d", addr, port), 20*time.Second)
	l.requireListeningIPv6("h1-c1", port)
	l.waitForDirectory("h2", addr, port, 5*time.Second)
	url := fmt.Sprintf("http://%s:%d/1k.html", addr, port)
	for _, node := range []string{"h2-c1", "h1-c2"} {
		t.Run(node, func(t *testing.T) {
			l.t = t
			before := l.vxlanBytes("h1")
			out := runClients(t, l, node, true, [][]string{
				{"curl", "-sS", "-o", "/dev/null", "-w", "curl %{http_code} %{remote_ip}\n", url},
				{"wrk", "-t2", "-c16", "-d2s", url},
			})
			if crossed := l.vxlanBytes("h1") - before; crossed > 1<<20 {
				t.Errorf("%d bytes crossed the VXLAN device: nginx on [::] was not accelerated", crossed)
			}
			if !strings.Contains(out, "curl 200 "+addr) {
				t.Errorf("curl did not get 200 from %s:\n%s", addr, out)
			}
			if strings.Contains(out, "Socket errors") || strings.Contains(out, "Non-2xx") {
				t.Errorf("wrk saw errors:\n%s", out)
			}
			if err := positive(out, `Requests/sec:\s+([0-9.]+)`); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestIntegrationIPv6OnlyListenerLeftAlone: nginx's `listen [::]:8081`
// (IPV6_V6ONLY by default) carries no IPv4: the shim leaves it alone, and
// the router counts it under the "ipv6" fallback reason.
func TestIntegrationIPv6OnlyListenerLeftAlone(t *testing.T) {
	requireTool(t, "nginx")
	l := newLab(t, "dso")
	const port = 8081
	dir := sharedTempDir(t)
	writeNginxConfig(t, dir, fmt.Sprintf("[::]:%d", port))
	ctl := filepath.Join(l.RouterDir("h1"), control.SocketName)
	before := ipv6Fallbacks(t, ctl)
	server := l.start("h1-c1", true, "env", "SLIM_DEBUG=1", "nginx", "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"))
	server.waitFor("IPV6_V6ONLY socket is not accelerated", 20*time.Second)
	l.requireListeningIPv6("h1-c1", port)
	var got uint64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = ipv6Fallbacks(t, ctl); got > before {
			break
		}
	}
	if got <= before {
		t.Errorf("the router counts no ipv6 fallback for nginx's IPV6_V6ONLY listener (%d before, %d after)", before, got)
	}
	if l.directoryLists("h1", l.containerAddr("h1-c1"), port) {
		t.Error("an IPV6_V6ONLY listener was published")
	}
}

// leftAloneClient connects an AF_INET6 socket to an IPv6 address (2001:2::1,
// which nothing routes in the lab) and an IPV6_V6ONLY socket to a
// v4-mapped overlay address; both fail, as the kernel says.
const leftAloneClient = `
import socket, sys
for name, only, addr in (("ipv6-destination", 0, ("2001:2::1", 9)), ("v6only", 1, ("::ffff:" + sys.argv[1], 9))):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, only)
    s.settimeout(2)
    try:
        s.connect(addr)
        print(name, "connected", flush=True)
    except OSError as e:
        print(name, "failed", e.errno, flush=True)
`

// TestIntegrationIPv6ClientsLeftAlone: a connect to an IPv6 address and
// one from an IPV6_V6ONLY socket are left to the kernel, each said once
// under SLIM_DEBUG and counted as an "ipv6" fallback.
func TestIntegrationIPv6ClientsLeftAlone(t *testing.T) {
	requireTool(t, "python3")
	l := newLab(t, "dsv")
	ctl := filepath.Join(l.RouterDir("h2"), control.SocketName)
	before := ipv6Fallbacks(t, ctl)
	p := l.start("h2-c1", true, "env", "SLIM_DEBUG=1", "python3", "-c", leftAloneClient, l.containerAddr("h1-c1"))
	if err := p.wait(30 * time.Second); err != nil {
		t.Fatalf("client: %v\n%s", err, p.output())
	}
	out := p.output()
	for _, want := range []string{"ipv6-destination failed", "v6only failed",
		"a connect to an IPv6 address is not accelerated", "an IPV6_V6ONLY socket is not accelerated"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in the client's output:\n%s", want, out)
		}
	}
	var got uint64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = ipv6Fallbacks(t, ctl); got >= before+2 {
			break
		}
	}
	if got != before+2 {
		t.Errorf("the router of h2 counts %d ipv6 fallbacks, want %d", got, before+2)
	}
}

// TestIntegrationDualStackNode: a Node.js HTTP server with
// server.listen(port), its default (:: dual-stack), under curl and wrk.
func TestIntegrationDualStackNode(t *testing.T) {
	for _, tool := range []string{"node", "curl", "wrk"} {
		requireTool(t, tool)
	}
	l := newLab(t, "dsj")
	addr := l.containerAddr("h1-c1")
	const port = 8090
	script := `const http = require("http");
const s = http.createServer((req, res) => {
  res.end("hello from " + req.socket.localAddress + " to " + req.socket.remoteAddress + "\n");
});
s.listen(` + fmt.Sprint(port) + `, () => console.log("listening on", s.address()));
`
	server := l.start("h1-c1", true, "node", "-e", script)
	server.waitFor("listening on", 20*time.Second)
	l.requireListeningIPv6("h1-c1", port)
	l.waitForDirectory("h2", addr, port, 5*time.Second)
	url := fmt.Sprintf("http://%s:%d/", addr, port)
	before := l.vxlanBytes("h1")
	out := runClients(t, l, "h2-c1", true, [][]string{
		{"curl", "-sS", url},
		{"wrk", "-t2", "-c16", "-d2s", url},
	})
	if crossed := l.vxlanBytes("h1") - before; crossed > 1<<20 {
		t.Errorf("%d bytes crossed the VXLAN device: node's listen(port) was not accelerated", crossed)
	}
	want := fmt.Sprintf("hello from ::ffff:%s to ::ffff:%s", addr, l.containerAddr("h2-c1"))
	if !strings.Contains(out, want) {
		t.Errorf("node did not see the v4-mapped overlay addresses (%q):\n%s", want, out)
	}
	if strings.Contains(out, "Socket errors") || strings.Contains(out, "Non-2xx") {
		t.Errorf("wrk saw errors:\n%s", out)
	}
	if err := positive(out, `Requests/sec:\s+([0-9.]+)`); err != nil {
		t.Error(err)
	}
}

// TestIntegrationSecureDualStackIperf3: in secure mode too, `iperf3 -s`
// with its default bind (::, dual-stack) is accelerated, for clients by the
// IPv4 overlay address and by its v4-mapped form: the host sockets are
// AF_INET6 ones, under the *6 programs.
func TestIntegrationSecureDualStackIperf3(t *testing.T) {
	requireTool(t, "iperf3")
	dualStackIperf3(t, newSecureLab(t, "wva"))
}

// requireListeningIPv6 fails unless node has an AF_INET6 TCP socket
// listening on port (the kernel's tcp6 table): the test exercises
// dual-stack listeners, not an IPv4 fallback of the program.
func (l *testLab) requireListeningIPv6(node string, port int) {
	l.t.Helper()
	n, err := l.Node(node)
	if err != nil {
		l.t.Fatal(err)
	}
	var table []byte
	err = n.Do(func() error {
		var err error
		table, err = os.ReadFile("/proc/thread-self/net/tcp6") // this thread is in the node
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	// local_address is ADDR:PORT in hex; state 0A is LISTEN.
	suffix := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(table), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], suffix) && f[3] == "0A" {
			return
		}
	}
	l.t.Fatalf("no AF_INET6 listener on port %d in %s:\n%s", port, node, table)
}

// ipv6Fallbacks is the "ipv6" fallback count of a router's shims.
func ipv6Fallbacks(t *testing.T, controlPath string) uint64 {
	t.Helper()
	snap, err := control.Fetch(context.Background(), controlPath)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Shims.Fallbacks["ipv6"]
}

func requireTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Fatalf("%s is not installed (make deps installs it): %v", tool, err)
	}
}
