package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/control"
)

// TestIntegrationShimReportsEveryConnect: every connect of a program under
// slim exec to an overlay destination is reported to its router (STATS)
// exactly once, as an accelerated setup or as a fallback: a program that
// makes 300 connects in well under a second and exits (what it counted
// after its first report is sent as it exits), one that forks 40
// short-lived children that connect and exit at once (each reports its
// own connects, not its parent's, and the router reads the report before
// the child is gone), and one whose router
// stalls for a while (its connects fall back to the overlay while the
// shim leaves the router alone, and those fallbacks are reported when the
// router is back). Before, the exit's report was lost and fallbacks
// counted during the shim's back-off were thrown away.
func TestIntegrationShimReportsEveryConnect(t *testing.T) {
	l := newLab(t, "stats")
	const port = 6400
	server := l.containerAddr("h1-c1")
	srv := l.start("h1-c1", true, binPath("connect_block"), "server", server, fmt.Sprint(port))
	l.waitForDirectory("h2", server, port, 10*time.Second)
	_ = srv
	h2 := filepath.Join(l.RouterDir("h2"), control.SocketName)

	t.Run("exit", func(t *testing.T) {
		before := reportedConnects(t, h2)
		client := l.start("h2-c1", true, binPath("connectmany"), server, fmt.Sprint(port), "300")
		if err := client.wait(60 * time.Second); err != nil {
			t.Fatalf("connectmany: %v\n%s", err, client.output())
		}
		waitForReported(t, h2, before+300)
	})

	t.Run("children", func(t *testing.T) {
		before := reportedConnects(t, h2)
		client := l.start("h2-c1", true, binPath("connectmany"), server, fmt.Sprint(port), "5", "0", "40")
		if err := client.wait(60 * time.Second); err != nil {
			t.Fatalf("connectmany: %v\n%s", err, client.output())
		}
		waitForReported(t, h2, before+5*41)
	})

	t.Run("stall", func(t *testing.T) {
		before := reportedConnects(t, h2)
		router := routerPID(t, l.RouterDir("h2"))
		client := l.start("h2-c1", true, binPath("connectmany"), server, fmt.Sprint(port), "150", "10")
		time.Sleep(300 * time.Millisecond)
		if err := unix.Kill(router, unix.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Kill(router, unix.SIGCONT) })
		time.Sleep(1200 * time.Millisecond)
		unix.Kill(router, unix.SIGCONT)
		if err := client.wait(60 * time.Second); err != nil {
			t.Fatalf("connectmany: %v\n%s", err, client.output())
		}
		t.Logf("connectmany: %s", client.output())
		waitForReported(t, h2, before+150)
	})
}

// reportedConnects is what the router's shims reported: setups plus
// fallbacks.
func reportedConnects(t *testing.T, controlPath string) uint64 {
	t.Helper()
	snap, err := control.Fetch(context.Background(), controlPath)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Shims.Setups() + snap.Shims.TotalFallbacks()
}

// waitForReported waits a few seconds for the reported connects to reach
// want, and fails if they do not, or go beyond.
func waitForReported(t *testing.T, controlPath string, want uint64) {
	t.Helper()
	var got uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = reportedConnects(t, controlPath); got >= want {
			break
		}
	}
	snap, _ := control.Fetch(context.Background(), controlPath)
	t.Logf("shims: %d reports, %d setups, fallbacks %v", snap.Shims.Reports, snap.Shims.Setups(), snap.Shims.Fallbacks)
	if got != want {
		t.Errorf("the router counts %d connects, want %d", got, want)
	}
}

// routerPID is the pid of the router serving dir.
func routerPID(t *testing.T, dir string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), filepath.Join(dir, "router.json")) {
			return pid
		}
	}
	t.Fatalf("no router process for %s", dir)
	return 0
}
