package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestIntegrationRedisProtectedMode: redis-server with every default
// (protected mode on, no password, listening on 0.0.0.0 and ::) serves
// only clients it sees on loopback. Accelerated clients from another host
// and from another container of its host must still be seen by their
// overlay address, so refused, though their connections arrive on the
// host's sockets; a client in its own container, on loopback, is served.
// A server that trusts loopback peers is how a wrong peer address would
// become an open door.
func TestIntegrationRedisProtectedMode(t *testing.T) {
	for _, tool := range []string{"redis-server", "redis-cli"} {
		requireTool(t, tool)
	}
	runRedisProtected(t, newLab(t, "exr"))
}

// TestIntegrationSecureRedisProtectedMode is the same in secure mode.
func TestIntegrationSecureRedisProtectedMode(t *testing.T) {
	for _, tool := range []string{"redis-server", "redis-cli"} {
		requireTool(t, tool)
	}
	runRedisProtected(t, newSecureLab(t, "exq"))
}

func runRedisProtected(t *testing.T, l *testLab) {
	addr := l.containerAddr("h1-c1")
	server := l.start("h1-c1", true, "redis-server", "--save", "", "--dir", sharedTempDir(t))
	server.waitFor("Ready to accept connections", 20*time.Second)
	l.waitForDirectory("h2", addr, 6379, 5*time.Second)
	for _, c := range []struct {
		node, target, want string
	}{
		{"h2-c1", addr, "DENIED Redis is running in protected mode"},
		{"h1-c2", addr, "DENIED Redis is running in protected mode"},
		{"h1-c1", "127.0.0.1", "PONG"},
	} {
		before := l.vxlanBytes("h1")
		p := l.start(c.node, true, "redis-cli", "-h", c.target, "ping")
		if err := p.wait(20 * time.Second); err != nil {
			t.Fatalf("redis-cli in %s: %v\n%s", c.node, err, p.output())
		}
		if !strings.Contains(p.output(), c.want) {
			t.Errorf("redis-cli in %s to %s: want %q, got:\n%s", c.node, c.target, c.want, p.output())
		}
		// The refusal must come over an accelerated connection (over the
		// overlay redis sees the right address anyway): nothing of it
		// crosses the VXLAN device.
		if crossed := l.vxlanBytes("h1") - before; crossed != 0 && c.node == "h2-c1" {
			t.Errorf("redis-cli in %s: %d bytes crossed the VXLAN device: not accelerated", c.node, crossed)
		}
	}
}
