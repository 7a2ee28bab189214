package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
)

// TestIntegrationSupervisedNATS runs a 3-member NATS cluster (routes
// between members, two of them across hosts) under slim exec, with
// supervised Go clients publishing on one member and subscribing on
// others: every message arrives once, the routes and the clients'
// connections are host connections and the VXLAN device carries none of
// it; plain clients reach a member under Slim; a member killed mid-run is
// left by its subscriber for another member and comes back into the
// cluster when started again.
func TestIntegrationSupervisedNATS(t *testing.T) {
	testenv.Tools(t, "nats-server", "go", "curl")
	l := newLab(t, "supn")
	n := startNATSCluster(t, l)
	t.Run("routes", func(t *testing.T) { l.t = t; natsAcrossRoutes(t, n) })
	t.Run("plain clients", func(t *testing.T) { l.t = t; natsPlainClients(t, n) })
	t.Run("member killed", func(t *testing.T) { l.t = t; natsMemberKilled(t, n) })
	t.Run("member restarted", func(t *testing.T) { l.t = t; natsMemberRestarted(t, n) })
	l.t = t
	for name, p := range n.servers {
		checkSupervised(t, p)
		if strings.Contains(p.output(), "[FTL]") {
			t.Errorf("server %s: %s", name, tail(p.output(), 20))
		}
	}
}

// natsAcrossRoutes: 3000 messages published on n1 reach a subscriber on
// n3 (the route crosses hosts) and one on n2 (its client connection
// crosses hosts) once each, with nothing over VXLAN; the routes and the
// client connections across hosts are host connections.
func natsAcrossRoutes(t *testing.T, n *natsLab) {
	const count = 3000
	routes := n.acrossHosts()
	onN3 := n.subscribe("A", "steady", count, 30, "n3")
	onN2 := n.subscribe("B", "steady", count, 30, "n2")
	withClient := n.acrossHosts()
	clientIP := "client_ip=" + n.containerAddr(natsClientNode) + "\n"
	for _, p := range []*program{onN3, onN2} {
		if !strings.Contains(p.output(), clientIP) {
			t.Errorf("the server saw another client address than the overlay's (want %s):\n%s", clientIP, p.output())
		}
	}
	before := n.vxlanBytes("h1")
	pub := n.publish("n1", "steady", count, 0, 2)
	published(t, pub, count)
	exactlyOnce(t, onN3, count)
	exactlyOnce(t, onN2, count)
	crossed := n.vxlanBytes("h1") - before
	t.Logf("%d messages of %d bytes: %d bytes over VXLAN; host connections between h1 and h2: %v, with a subscriber on n2: %v",
		count, natsMsgSize, crossed, routes, withClient)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device for %d messages through a route and client connections across hosts", crossed, count)
		n.logSockets()
	}
	if overlay := n.overlayRoutes(); len(overlay) > 0 {
		t.Errorf("routes on the overlay: %v", overlay)
	}
	if len(routes) < 2 || len(withClient) < len(routes)+1 {
		t.Errorf("host connections between h1 and h2: %d, want the routes n1-n3 and n2-n3; %d with a client of n2 in h2, want one more",
			len(routes), len(withClient))
		n.logSockets()
	}
}

// natsPlainClients: clients not under Slim, across hosts, beside the
// server and in its container, reach a member under Slim and are seen at
// their overlay addresses; a plain publisher's messages cross the routes
// to a supervised subscriber.
func natsPlainClients(t *testing.T, n *natsLab) {
	for _, node := range []string{"h2-c2", "h1-c2", "h1-c1"} {
		p := n.start(node, false, n.app, "roundtrip", n.clientURL("n1"), "100")
		want := "roundtrip 100 client_ip=" + n.containerAddr(node) + "\n"
		if err := p.wait(20 * time.Second); err != nil || !strings.Contains(p.output(), want) {
			t.Errorf("a client not under Slim in %s: %v, want %q:\n%s", node, err, want, p.output())
		}
	}
	const count = 500
	sub := n.subscribe("P", "plain", count, 30, "n3")
	pub := n.start("h1-c2", false, n.app, "pub", "plain", strconv.Itoa(count), "0", "1", "30", n.clientURL("n1"))
	published(t, pub, count)
	exactlyOnce(t, sub, count)
}

// natsMemberKilled kills n2 (SIGKILL) while messages flow from n1: its
// subscriber takes its subscription to the next member, as NATS clients
// do, and loses only what was published meanwhile (NATS delivers at most
// once); a subscriber on n3 gets every message; nothing hangs.
func natsMemberKilled(t *testing.T, n *natsLab) {
	const count, rate = 3000, 1000
	leaving := n.subscribe("C", "failover", count, 30, "n2", "n1", "n3")
	staying := n.subscribe("D", "failover", count, 30, "n3")
	before := n.vxlanBytes("h1")
	pub := n.publish("n1", "failover", count, rate, 2)
	pub.waitFor("ready", 20*time.Second)
	time.Sleep(time.Second)
	if err := n.servers["n2"].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	published(t, pub, count)
	exactlyOnce(t, staying, count)
	r := subResult(t, leaving)
	crossed := n.vxlanBytes("h1") - before
	lost, gaps := missingCount(r.missing)
	t.Logf("the subscriber of the killed member: %+v (%d lost in %d gaps); %d bytes over VXLAN", r, lost, gaps, crossed)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device for %d messages to two subscribers, one of which moved to n1", crossed, count)
		n.logSockets()
	}
	if r.dup != 0 || r.disorder != 0 || r.reconnects != 1 || r.got+lost != count || gaps > 1 || lost > rate/2 {
		t.Errorf("subscriber of the killed member: want one reconnect, no duplicate, no disorder, one gap of less than 0.5 s:\n%s",
			leaving.output())
	}
	if want := "subscribed C on " + n.clientURL("n1"); !strings.Contains(leaving.output(), want) {
		t.Errorf("want %q:\n%s", want, leaving.output())
	}
	for _, name := range []string{"n1", "n3"} {
		select {
		case <-n.servers[name].exited:
			t.Errorf("server %s exited: %v\n%s", name, n.servers[name].err, tail(n.servers[name].output(), 20))
		default:
		}
	}
}

// natsMemberRestarted starts n2 again: it rejoins the cluster (its routes
// come back, accelerated), and messages published on n3 reach a
// subscriber on n2 once each.
func natsMemberRestarted(t *testing.T, n *natsLab) {
	n.startServer("n2")
	n.servers["n2"].waitFor("Server is ready", 15*time.Second)
	n.waitForMesh()
	const count = 2000
	sub := n.subscribe("E", "restarted", count, 30, "n2")
	before := n.vxlanBytes("h1")
	pub := n.publish("n3", "restarted", count, 0, 1)
	published(t, pub, count)
	exactlyOnce(t, sub, count)
	crossed := n.vxlanBytes("h1") - before
	t.Logf("%d messages from n3 to n2 after its restart: %d bytes over VXLAN; host connections between h1 and h2: %v",
		count, crossed, n.acrossHosts())
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device for %d messages through the restarted member's route", crossed, count)
		n.logSockets()
	}
	if overlay := n.overlayRoutes(); len(overlay) > 0 {
		t.Errorf("routes on the overlay after the restart (the members dial n2 every second): %v", overlay)
	}
}
