package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
)

// TestIntegrationSupervisedReportsStats: a supervised program's connects
// count in the router's shim statistics (slim status, slim top) as a
// preloaded program's do: connectmany built static (so supervised) makes
// 300 accelerated connects, each a setup, then 40 connects to a server
// without Slim, each a fallback with no directory entry. Before, the
// supervisor sent no STATS and the router counted none of them.
func TestIntegrationSupervisedReportsStats(t *testing.T) {
	l := newLab(t, "supt")
	b := buildSupervised(t)
	connectmany := filepath.Join(b.glibcStatic, "connectmany")
	server := l.containerAddr("h1-c1")
	const accelerated, plain = 6410, 6411
	l.start("h1-c1", true, binPath("connect_block"), "server", server, fmt.Sprint(accelerated))
	l.start("h1-c1", false, binPath("connect_block"), "server", server, fmt.Sprint(plain))
	l.waitForDirectory("h2", server, accelerated, 10*time.Second)
	h2 := filepath.Join(l.RouterDir("h2"), control.SocketName)

	run := func(port, n int) {
		t.Helper()
		client := l.start("h2-c1", true, connectmany, server, fmt.Sprint(port), fmt.Sprint(n))
		if err := client.wait(60 * time.Second); err != nil {
			t.Fatalf("connectmany: %v\n%s", err, client.output())
		}
	}
	before := shimStats(t, h2)
	run(accelerated, 300)
	waitForReported(t, h2, before.Setups()+before.TotalFallbacks()+300)
	after := shimStats(t, h2)
	if got := after.Setups() - before.Setups(); got != 300 {
		t.Errorf("%d setups reported for 300 accelerated connects", got)
	}

	before = after
	run(plain, 40)
	waitForReported(t, h2, before.Setups()+before.TotalFallbacks()+40)
	after = shimStats(t, h2)
	if got := after.Fallbacks["no_directory_entry"] - before.Fallbacks["no_directory_entry"]; got != 40 {
		t.Errorf("%d fallbacks with no directory entry reported for 40 connects to a server without Slim (fallbacks %v)", got, after.Fallbacks)
	}
}

func shimStats(t *testing.T, controlPath string) control.ShimStats {
	t.Helper()
	snap, err := control.Fetch(context.Background(), controlPath)
	if err != nil {
		t.Fatal(err)
	}
	return snap.Shims
}
