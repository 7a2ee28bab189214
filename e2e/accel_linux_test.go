package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// transferBytes is the size of the bulk transfers that prove acceleration.
const transferBytes = 200 << 20

// TestIntegrationAcceleration proves that accelerated connections really
// bypass the overlay: during a bulk transfer between containers on two
// hosts, the connection exists between the hosts' wire addresses in the
// host namespaces and the VXLAN devices carry (almost) nothing. The same
// transfer with an unaccelerated client shows the check is meaningful.
func TestIntegrationAcceleration(t *testing.T) {
	l := newLab(t, "acc")
	t.Run("accelerated", func(t *testing.T) {
		l.t = t
		vxlan, conns := bulkTransfer(t, l, true, 6100)
		if vxlan > 1<<20 {
			t.Errorf("VXLAN carried %d bytes of a %d-byte accelerated transfer", vxlan, transferBytes)
		}
		if len(conns) == 0 {
			t.Error("no connection between the hosts' wire addresses in h1 during the transfer")
		}
	})
	t.Run("plain-client", func(t *testing.T) {
		l.t = t
		vxlan, _ := bulkTransfer(t, l, false, 6200)
		if vxlan < transferBytes/2 {
			t.Errorf("VXLAN carried only %d bytes of a %d-byte overlay transfer", vxlan, transferBytes)
		}
	})
}

// bulkTransfer sends transferBytes with iperf3 from h2-c1 to h1-c1 (server
// always under slim exec) and returns the VXLAN bytes h1 saw and the
// host-namespace connections seen during the transfer.
func bulkTransfer(t *testing.T, l *testLab, slimClient bool, port int) (uint64, []string) {
	addr := l.containerAddr("h1-c1")
	server := l.start("h1-c1", true, "iperf3", "--forceflush", "-s", "-1", "-B", addr, "-p", fmt.Sprint(port))
	server.waitFor("Server listening", 10*time.Second)
	if slimClient {
		// h2's router learns of the listener from h1's router; a client
		// that connects before that rightly goes over the overlay.
		l.waitForDirectory("h2", addr, port, 10*time.Second)
	}
	before := l.vxlanBytes("h1")
	client := l.start("h2-c1", slimClient, "iperf3", "-c", addr, "-p", fmt.Sprint(port), "-n", fmt.Sprint(transferBytes), "-B", l.containerAddr("h2-c1"))
	var conns []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && len(conns) == 0; {
		conns = l.hostConnections("h1")
		select {
		case <-client.exited:
			deadline = time.Now()
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := client.wait(60 * time.Second); err != nil {
		t.Fatalf("iperf3 client: %v\n%s\nserver:\n%s", err, client.output(), server.output())
	}
	if err := server.wait(10 * time.Second); err != nil {
		t.Fatalf("iperf3 server: %v\n%s", err, server.output())
	}
	if strings.Contains(client.output()+server.output(), "198.18.") {
		t.Errorf("iperf3 reported a host address:\n%s\n%s", client.output(), server.output())
	}
	return l.vxlanBytes("h1") - before, conns
}
