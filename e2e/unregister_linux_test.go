package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
)

// holdClient connects, prints the server's first line, waits for a
// go-ahead file, then reads again and says what it got.
const holdClient = `
import os, socket, sys, time
addr, port, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((addr, port))
print("first", s.recv(200).decode().strip(), flush=True)
while not os.path.exists(go):
    time.sleep(0.02)
try:
    data = s.recv(200)
    print("then", "eof" if not data else "data", flush=True)
except OSError as e:
    print("then", type(e).__name__, flush=True)
`

// TestIntegrationUnregisterResetsConnections: 'slim container del' makes
// the router reset a container's accelerated listener and the connections
// it accepted (the client sees a reset at once, not a hang), and withdraw
// the listener from the peers' directories. Also for a server whose
// sockets are AF_INET6 (SLIMTEST_INET6=1): its host listener and
// connections are AF_INET6 ones, which the router's sock_diag dumps must
// find to reset.
func TestIntegrationUnregisterResetsConnections(t *testing.T) {
	testenv.Tools(t, "python3")
	l := newLab(t, "unr")
	h := newCNIHost(l, "h1")
	for i, variant := range []struct {
		name string
		cmd  []string
	}{{"inet", nil}, {"inet6", inet6Cmd()}} {
		t.Run(variant.name, func(t *testing.T) {
			l.t = t
			unregisterResets(t, l, h, variant.cmd, 7750+i)
		})
	}
}

func unregisterResets(t *testing.T, l *testLab, h *cniHost, prefix []string, port int) {
	c := h.newContainer()
	addr := addrOf(t, h.add(c)).String()
	p := strconv.Itoa(port)
	server := l.startInNetns(c.netns, "h1", true, append(prefix, binPath("churn"), "server", addr, p)...)
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", addr, port, 10*time.Second)
	goAhead := filepath.Join(t.TempDir(), "go")
	client := l.start("h2-c1", true, "python3", "-c", holdClient, addr, p, goAhead)
	client.waitFor("first", 10*time.Second)
	h.waitForConnections(c.id, 1, 5*time.Second)

	out, err := exec.Command(slimPath, "container", "del", "--router-dir", l.RouterDir("h1"), c.id).CombinedOutput()
	if err != nil {
		t.Fatalf("slim container del: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`; (\d+) accelerated sockets reset`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("slim container del said %q", out)
	}
	if n, _ := strconv.Atoi(string(m[1])); n < 2 {
		t.Errorf("slim container del said %q, want the listener and its connection reset", out)
	}
	touch(t, goAhead)
	client.waitFor("then", 5*time.Second)
	if !strings.Contains(client.output(), "then ConnectionResetError") {
		t.Errorf("the client of the unregistered container's server saw %q, want a reset", client.output())
	}
	for deadline := time.Now().Add(10 * time.Second); l.directoryLists("h2", addr, port); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("h2's directory still lists %s:%d after the container was unregistered", addr, port)
		}
	}
	h.del(c, c.path)
}

// waitForConnections waits until the router lists at least n accelerated
// connections of the named container.
func (h *cniHost) waitForConnections(name string, n int, timeout time.Duration) {
	h.l.t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if h.routerContainers()[name].Connections >= n {
			return
		}
	}
	h.l.t.Fatalf("the router of %s lists %s with fewer than %d connections after %v", h.host, name, n, timeout)
}
