package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestIntegrationSupervisedUnseenAccepts: a supervised server that
// accepts with io_uring (testdata/c/uring built static) makes no accept
// the supervisor sees; it strands no accelerated client, which gets its
// HELLO over the overlay within the router timeout, as under the shim
// (TestIntegrationUnseenAccepts). Before, the supervisor published the
// host listener at listen(): the program took the first doorbell for a
// client, and every accelerated client waited in the host listener (the
// blocking probe was still running after a minute). Now the host
// listener stays pending until a trapped accept is seen on the program's
// listener, which a doorbell rung at listen() provokes at once in a
// program that waits with epoll, poll, select or accept.
func TestIntegrationSupervisedUnseenAccepts(t *testing.T) {
	l := newLab(t, "supu")
	b := buildSupervised(t)
	uring := filepath.Join(b.glibcStatic, "uring")
	flags := []string{"-static", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread"}
	argv := append(append([]string{"gcc"}, flags...), "-o", uring, filepath.Join(repoRoot, "testdata", "c", "uring.c"), "-luring")
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("building uring static: %v\n%s", err, out)
	}
	const port = 7850
	addr := l.containerAddr("h1-c1")
	server := l.start("h1-c1", true, uring, "server", addr, fmt.Sprint(port))
	server.waitFor("listening on", 10*time.Second)
	time.Sleep(300 * time.Millisecond) // what a supervisor publishes, the router has pushed
	blocking := l.start("h2-c1", true, binPath("probe"), addr, fmt.Sprint(port), "40", "25")
	viaUring := l.start("h2-c1", true, binPath("uring"), "client", addr, fmt.Sprint(port), "20")
	for _, client := range []*program{blocking, viaUring} {
		if paths := probeOutcome(t, client, 60*time.Second); paths["host"] > 0 {
			t.Errorf("%s: %d connections were accelerated to a server that accepts with io_uring", client.name, paths["host"])
		}
	}
	checkSupervised(t, server)
}
