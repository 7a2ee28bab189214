package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
)

// heldPoolSockets is what host's router says container holds against its
// pool quota (handed out and made ahead), once its sweep counted them.
func heldPoolSockets(t *testing.T, l *testLab, host, container string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := control.Dial(ctx, filepath.Join(l.RouterDir(host), "control.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range s.Containers {
		if ct.Name == container {
			return ct.PoolSockets
		}
	}
	t.Fatalf("no container %s in %s's snapshot", container, host)
	return 0
}

// TestIntegrationSecureStopClosesPoolsMadeAhead: a program in a container
// asks POOL twice on one connection, so that its secure router makes (and
// marks) its next batch ahead, closes what it got and keeps the
// connection open. The batch is the router's, held for the container:
// the router's clean stop must close it before it counts the host
// sockets still open, so that the count says none (the enrolled program
// alone keeps secure mode in the kernel). A batch left open would be
// counted as open host sockets, and keep secure mode in the kernel for
// nothing once the program exits.
func TestIntegrationSecureStopClosesPoolsMadeAhead(t *testing.T) {
	l := newSecureLab(t, "pah")
	goFile := filepath.Join(t.TempDir(), "go")
	p := l.start("h1-c1", true, "python3", filepath.Join(repoRoot, "e2e", "testdata", "poolahead.py"), goFile)
	p.waitFor("ASKED", 10*time.Second)
	held := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if held = heldPoolSockets(t, l, "h1", "h1-c1"); held == 4 {
			break
		}
	}
	if held != 4 {
		t.Fatalf("the router holds %d host sockets for h1-c1, want the 4 made ahead", held)
	}

	killRouter(t, l, "h1", syscall.SIGTERM)
	log, err := os.ReadFile(filepath.Join(l.RouterDir("h1"), "router.log"))
	if err != nil {
		t.Fatal(err)
	}
	var stop string
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "secure mode stays in the kernel") || strings.Contains(line, "secure mode removed from the kernel") {
			stop = line
		}
	}
	if !strings.Contains(stop, "processes enrolled in containers h1-c1") || strings.Contains(stop, "open host sockets") {
		t.Errorf("the router's stop said %q; want it to keep secure mode for the enrolled program alone, with no open host socket", stop)
	}
	touch(t, goFile)
	if err := p.wait(10 * time.Second); err != nil {
		t.Errorf("the program: %v\n%s", err, p.output())
	}
}
