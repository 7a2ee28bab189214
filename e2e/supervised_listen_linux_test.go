package e2e

import (
	"strconv"
	"testing"
	"time"
)

// TestIntegrationSupervisedStartingServer: a supervised Go client on h2
// dials a supervised Go server on h1 every 0.5 ms while the server
// starts, six times: each first connection is accelerated (the client's
// container shows no overlay connection). Before RESERVE, the supervisor
// made the program's socket listen and only then asked the router for its
// host listener: for the 2-7 ms until the peers had the entry, a client
// found none and connected over the overlay, to the listening socket, for
// the connection's life (7 of 15 first connections; NATS routes, whose
// members dial each other as they start, in one cluster start of eight).
func TestIntegrationSupervisedStartingServer(t *testing.T) {
	l := newLab(t, "supw")
	b := buildSupervised(t)
	const rounds = 6
	var overlay []string
	for i := range rounds {
		port := 7700 + i
		addr := l.containerAddr("h1-c1") + ":" + strconv.Itoa(port)
		client := l.start("h2-c1", true, b.goStatic, "firstdial", addr)
		client.waitFor("dialing", 10*time.Second)
		server := l.start("h1-c1", true, b.goStatic, "echo", addr)
		client.waitFor("first HELLO", 30*time.Second)
		overlay = append(overlay, l.containerConnections("h2-c1", port)...)
		if err := client.wait(10 * time.Second); err != nil {
			t.Errorf("round %d: %v\n%s", i, err, client.output())
		}
		t.Logf("round %d: %s", i, client.output())
		server.stop()
		checkSupervised(t, client)
		checkSupervised(t, server)
	}
	if len(overlay) > 0 {
		t.Errorf("first connections to a starting server on the overlay (%d rounds): %v", rounds, overlay)
	}
}
