package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
)

// relistenCycles is how many times testdata/c/relisten closes its listener
// and listens again on the same port.
const relistenCycles = 20

// relistenEchoBytes is what each cycle's client echoes (relisten.c's
// ECHO_BYTES): a cycle over the overlay would carry twice that on VXLAN.
const relistenEchoBytes = 256 << 10

// TestIntegrationRelisten: a server under slim exec that closes its
// listener and at once listens again on the same port (iperf3 -s between
// two tests) binds every time, as it does without Slim, and every cycle's
// client from another host is accelerated. Once, the shim's UNLISTEN note
// carried the app's listening socket to the router, which kept it alive
// (and the port taken) until it read the note: 19 of 20 binds failed with
// EADDRINUSE. The same holds across a restart of the server's router
// (its listener restored from the router's state): once, the shim's
// UNLISTEN and then LISTEN went to the dead router's connection, the
// entry stayed and the next listener was not accelerated.
func TestIntegrationRelisten(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		l := newLab(t, "rlp")
		t.Run("without-slim", func(t *testing.T) {
			l.t = t
			runRelisten(t, l, 7500, false, false)
		})
		t.Run("slim", func(t *testing.T) {
			l.t = t
			runRelisten(t, l, 7510, true, false)
		})
		t.Run("slim-router-restart", func(t *testing.T) {
			l.t = t
			runRelisten(t, l, 7520, true, true)
		})
	})
	t.Run("secure", func(t *testing.T) {
		l := newSecureLab(t, "rls")
		runRelisten(t, l, 7530, true, false)
	})
}

// runRelisten runs relisten's server in h1-c1 and its client in h2-c1,
// both under slim exec or neither. With restart, h1's router is killed and
// restarted while the first listener listens.
func runRelisten(t *testing.T, l *testLab, port int, slim, restart bool) {
	runRelistenOf(t, l, binPath("relisten"), port, slim, restart)
}

// runRelistenOf is runRelisten with relisten's binary named.
func runRelistenOf(t *testing.T, l *testLab, bin string, port int, slim, restart bool) {
	addr := l.containerAddr("h1-c1")
	cycles := fmt.Sprint(relistenCycles)
	argv := []string{bin, "server", addr, fmt.Sprint(port), cycles}
	pause := filepath.Join(t.TempDir(), "pause")
	if restart {
		touch(t, pause)
		argv = append(argv, pause)
	}
	server := l.start("h1-c1", slim, argv...)
	server.waitFor("listening on", 10*time.Second)
	if slim {
		l.waitForDirectory("h2", addr, port+1, 10*time.Second)
	}
	before := l.vxlanBytes("h1")
	client := l.start("h2-c1", slim, bin, "client", addr, fmt.Sprint(port), cycles)
	if restart {
		server.waitFor("# paused", 10*time.Second)
		l.restartRouter("h1", l.killRouter("h1"))
		// The next LISTEN returns once h2 has the listener, if h1's
		// restarted router pushes to h2 by then.
		l.waitForPushConnection("h1", 10*time.Second)
		if err := os.Remove(pause); err != nil {
			t.Fatal(err)
		}
	}
	clientErr := client.wait(120 * time.Second)
	serverErr := server.wait(10 * time.Second)
	crossed := l.vxlanBytes("h1") - before
	out := client.output() + server.output()
	if clientErr != nil || serverErr != nil || strings.Contains(out, "FAIL") {
		t.Errorf("client (%v):\n%s\nserver (%v):\n%s", clientErr, client.output(), serverErr, server.output())
	}
	if warnings := linesWithPrefix(out, "slim:"); len(warnings) > 0 {
		t.Errorf("slim warnings:\n%s", strings.Join(warnings, "\n"))
	}
	want := fmt.Sprintf("%d of %d cycles listened at once", relistenCycles, relistenCycles)
	if !strings.Contains(server.output(), want) {
		t.Errorf("the server did not report %q", want)
	}
	switch {
	case slim && crossed > maxStrayOverlayBytes:
		t.Errorf("%d bytes crossed the VXLAN device: some cycles' clients were not accelerated; client:\n%s", crossed, client.output())
	case !slim && crossed < relistenCycles*relistenEchoBytes:
		t.Errorf("only %d bytes crossed the VXLAN device without Slim (%d cycles of %d bytes)", crossed, relistenCycles, relistenEchoBytes)
	}
	t.Logf("%d bytes on VXLAN; server:\n%s", crossed, server.output())
}

// waitForPushConnection waits until host's router has its push connection
// to every peer up (the control API's peers[].connected).
func (l *testLab) waitForPushConnection(host string, timeout time.Duration) {
	l.t.Helper()
	path := filepath.Join(l.RouterDir(host), control.SocketName)
	var snap control.Snapshot
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if snap, err = control.Fetch(context.Background(), path); err != nil || len(snap.Peers) == 0 {
			continue
		}
		up := true
		for _, p := range snap.Peers {
			up = up && p.Connected
		}
		if up {
			return
		}
	}
	l.t.Fatalf("the router of %s has no push connection to its peers after %v: %+v (%v)", host, timeout, snap.Peers, err)
}
