package e2e

import (
	"syscall"
	"testing"
	"time"
)

// TestIntegrationSecureSupervisedRouterRestart: in secure mode, a
// supervised Go client connecting in a loop while its router is killed and
// started again is accelerated again once the router is back, as a
// preloaded one is (its shim reconnects): its connects after the restart
// stay off the VXLAN device and none fails. Before, the supervisor's
// router connections were the ones slim exec had made before the program
// started (the router answers POOL only to the enrolled program): the
// restart closed them, and once its pool sockets were used up every later
// connect of the program went over the overlay.
func TestIntegrationSecureSupervisedRouterRestart(t *testing.T) {
	l := newSecureLab(t, "supw")
	b := buildSupervised(t)
	addr := l.containerAddr("h1-c1") + ":7320"
	server := l.start("h1-c1", true, b.goStatic, "echo", addr)
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), 7320, 5*time.Second)
	client := l.start("h2-c1", true, b.goStatic, "churn", addr, "16")
	time.Sleep(time.Second)
	killRouter(t, l, "h2", syscall.SIGKILL)
	restartRouter(t, l, "h2")
	// The pool sockets of before are used up within this, and a pool
	// left alone after a failed refill is asked again within a second.
	time.Sleep(4 * time.Second)
	before := l.vxlanBytes("h1")
	hostBefore := len(l.hostConnections("h1"))
	time.Sleep(6 * time.Second)
	crossed := l.vxlanBytes("h1") - before
	hostAfter := len(l.hostConnections("h1"))
	err := client.wait(60 * time.Second)
	m := churnLine.FindStringSubmatch(client.output())
	if err != nil || m == nil || m[2] != "0" {
		t.Fatalf("churn across a router restart: %v\n%s", err, client.output())
	}
	t.Logf("%s; after the restart, %d bytes over VXLAN in 6 s, host connections in h1 %d then %d", m[0], crossed, hostBefore, hostAfter)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device in 6 s of connects after the router restart: the supervised client fell back to the overlay", crossed)
	}
	checkSupervised(t, client)
}
