package e2e

import (
	"strconv"
	"testing"
	"time"
)

// TestIntegrationStartingServer: a supervised Go client on h2 dials a
// server on h1 every 0.5 ms while the server starts, six times per server
// kind: a supervised Go server and a preloaded Python one (bind, then
// listen, with Python's defaults). Each first connection is accelerated
// (the client's container shows no overlay connection). Before RESERVE, the
// supervisor and the shim made the program's socket listen and only then
// asked the router for its host listener: for the 2-7 ms until the peers
// had the entry, a client found none and connected over the overlay, to
// the listening socket, for the connection's life (supervised: 7 of 15
// first connections, NATS routes, whose members dial each other as they
// start, in one cluster start of eight; preloaded: 4 of 8).
func TestIntegrationStartingServer(t *testing.T) {
	l := newLab(t, "supw")
	b := buildSupervised(t)
	servers := []struct {
		name string
		argv func(addr string, port int) []string
	}{
		{"supervised", func(addr string, _ int) []string { return []string{b.goStatic, "echo", addr} }},
		{"preloaded", func(_ string, port int) []string {
			return []string{systemPython, testdataPath("helloserver.py"), strconv.Itoa(port)}
		}},
	}
	port := 7700
	for _, kind := range servers {
		t.Run(kind.name, func(t *testing.T) {
			l.t = t
			const rounds = 6
			var overlay []string
			for i := range rounds {
				port++
				addr := l.containerAddr("h1-c1") + ":" + strconv.Itoa(port)
				client := l.start("h2-c1", true, b.goStatic, "firstdial", addr)
				client.waitFor("dialing", 10*time.Second)
				server := l.start("h1-c1", true, kind.argv(addr, port)...)
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
		})
	}
}
