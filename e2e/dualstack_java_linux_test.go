package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestIntegrationDualStackJava: a Java HTTP server and client with the
// JDK's defaults in containers where the JVM finds IPv6 (loopback has
// ::1), so that every socket it makes is AF_INET6: the server listens on
// :: (dual-stack) and the client connects to the server's IPv4 overlay
// address through a v4-mapped AF_INET6 socket. Both directions are
// accelerated (VXLAN flat), over one pooled connection (java.net.http)
// and a connection per request (HttpURLConnection, Connection: close),
// and the server sees the client's overlay address.
func TestIntegrationDualStackJava(t *testing.T) {
	requireTool(t, "java")
	l := newLab(t, "djv")
	for _, node := range []string{"h1-c1", "h2-c1"} {
		enableLoopbackIPv6(t, l, node)
	}
	addr, client := l.containerAddr("h1-c1"), l.containerAddr("h2-c1")
	const port, requests = 9100, 10
	program := testdataPath("JavaEcho.java")
	server := l.start("h1-c1", true, "java", program, "server", fmt.Sprint(port))
	server.waitFor("LISTENING", 60*time.Second)
	l.requireListeningIPv6("h1-c1", port)
	l.waitForDirectory("h2", addr, port, 10*time.Second)
	before := l.vxlanBytes("h1")
	p := l.start("h2-c1", true, "java", program, "client", addr, fmt.Sprint(port), fmt.Sprint(requests))
	if err := p.wait(120 * time.Second); err != nil {
		t.Fatalf("java client: %v\n%s\nserver:\n%s", err, p.output(), server.output())
	}
	want := fmt.Sprintf("OK %d of %d seen [client=%s]", 2*requests, 2*requests, client)
	if !strings.Contains(p.output(), want) {
		t.Errorf("the java client did not print %q:\n%s", want, p.output())
	}
	if crossed := l.vxlanBytes("h1") - before; crossed > maxStrayOverlayBytes {
		t.Errorf("VXLAN carried %d bytes of %d requests of 64 KiB: not accelerated", crossed, 2*requests)
	}
	if warnings := linesWithPrefix(p.output()+server.output(), "slim:"); len(warnings) > 0 {
		t.Errorf("slim warnings:\n%s", strings.Join(warnings, "\n"))
	}
}

// enableLoopbackIPv6 turns IPv6 on for node's loopback only (the lab's
// containers have it off): the JVM then makes AF_INET6 sockets, and no
// IPv6 packet leaves the namespace.
func enableLoopbackIPv6(t *testing.T, l *testLab, node string) {
	t.Helper()
	p := l.start(node, false, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/lo/disable_ipv6 && grep -q ' lo$' /proc/net/if_inet6")
	if err := p.wait(10 * time.Second); err != nil {
		t.Fatalf("enabling IPv6 on %s's loopback: %v\n%s", node, err, p.output())
	}
}
