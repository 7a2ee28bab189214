package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A NATS cluster (Debian's nats-server, a Go program the supervised path
// was not written against) under slim exec, with Go clients that speak
// NATS's protocol themselves (e2e/testdata/natsapp), both supervised.

var (
	natsAppOnce sync.Once
	natsAppPath string
	natsAppErr  error
)

// buildNATSApp builds e2e/testdata/natsapp static (CGO_ENABLED=0), once.
func buildNATSApp(t *testing.T) string {
	t.Helper()
	build(t)
	natsAppOnce.Do(func() {
		natsAppPath = filepath.Join(buildDir, "natsapp") // removed with it by TestMain
		cmd := exec.Command("go", "build", "-o", natsAppPath, "./testdata/natsapp")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			natsAppErr = fmt.Errorf("go build natsapp: %v\n%s", err, out)
		}
	})
	if natsAppErr != nil {
		t.Fatal(natsAppErr)
	}
	return natsAppPath
}

// natsMembers are the cluster's servers: two on h1, one on h2. The
// clients run in h2-c2, so n1 and n2 are across hosts from them, and the
// routes n1-n3 and n2-n3 cross hosts.
var natsMembers = []struct{ name, node string }{{"n1", "h1-c1"}, {"n2", "h1-c2"}, {"n3", "h2-c1"}}

const natsClientNode = "h2-c2"

// natsMsgSize is natsapp's message size.
const natsMsgSize = 256

// natsLab is a lab running a NATS cluster under slim exec.
type natsLab struct {
	*testLab
	app     string              // natsapp
	servers map[string]*program // by member name
	confs   map[string]string   // configuration files, by member name
}

// natsConfig is what a user writes for a member: its name, the cluster's
// name, and routes to the other members; clients on the default port
// (4222, all addresses), monitoring on the usual one (8222).
func natsConfig(l *testLab, self string) string {
	var routes []string
	for _, m := range natsMembers {
		if m.name != self {
			routes = append(routes, "    nats://"+l.containerAddr(m.node)+":6222")
		}
	}
	return fmt.Sprintf("server_name: %s\nhttp_port: 8222\ncluster {\n  name: slim\n  listen: 0.0.0.0:6222\n  routes: [\n%s\n  ]\n}\n",
		self, strings.Join(routes, "\n"))
}

func startNATSCluster(t *testing.T, l *testLab) *natsLab {
	t.Helper()
	n := &natsLab{testLab: l, app: buildNATSApp(t), servers: map[string]*program{}, confs: map[string]string{}}
	dir := t.TempDir()
	for _, m := range natsMembers {
		n.confs[m.name] = filepath.Join(dir, m.name+".conf")
		if err := os.WriteFile(n.confs[m.name], []byte(natsConfig(l, m.name)), 0o644); err != nil {
			t.Fatal(err)
		}
		n.startServer(m.name)
	}
	for _, m := range natsMembers {
		n.servers[m.name].waitFor("Server is ready", 15*time.Second)
	}
	n.waitForMesh()
	return n
}

// natsRoutez is the part of a member's /routez (monitoring) read here.
type natsRoutez struct {
	NumRoutes int `json:"num_routes"`
	Routes    []struct {
		RemoteID string `json:"remote_id"`
		IP       string `json:"ip"`
	} `json:"routes"`
}

// routez asks member name for its routes, with curl (not under Slim) in
// its container.
func (n *natsLab) routez(name string) (natsRoutez, string) {
	n.t.Helper()
	url := "http://" + n.containerAddr(natsNode(name)) + ":8222/routez"
	p := n.start(natsNode(name), false, "curl", "-sS", "--max-time", "5", url)
	p.wait(10 * time.Second)
	var r natsRoutez
	json.Unmarshal([]byte(p.output()), &r)
	return r, p.output()
}

// waitForMesh waits until every member has one route to each other
// member, the other members seen at their overlay addresses.
func (n *natsLab) waitForMesh() {
	n.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for _, m := range natsMembers {
		for {
			r, out := n.routez(m.name)
			remotes := map[string]bool{}
			for _, route := range r.Routes {
				remotes[route.RemoteID] = true
				if !strings.HasPrefix(route.IP, "198.19.") {
					n.t.Errorf("%s has a route from %s, want an overlay address", m.name, route.IP)
				}
			}
			if r.NumRoutes == len(natsMembers)-1 && len(remotes) == r.NumRoutes {
				break
			}
			if time.Now().After(deadline) {
				n.t.Fatalf("%s's routes are not the other members' after 15 s:\n%s", m.name, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// startServer starts member name under slim exec in its node.
func (n *natsLab) startServer(name string) {
	n.servers[name] = n.start(natsNode(name), true, "nats-server", "-c", n.confs[name])
}

func natsNode(name string) string {
	for _, m := range natsMembers {
		if m.name == name {
			return m.node
		}
	}
	panic("no NATS member " + name)
}

// clientURL is member name's client address (HOST:PORT).
func (n *natsLab) clientURL(name string) string {
	return n.containerAddr(natsNode(name)) + ":4222"
}

// subscribe starts natsapp sub under slim exec in the clients' node,
// on the members named (in turn when one is lost), and waits until its
// server has the subscription.
func (n *natsLab) subscribe(name, subject string, count, seconds int, members ...string) *program {
	n.t.Helper()
	var urls []string
	for _, m := range members {
		urls = append(urls, n.clientURL(m))
	}
	p := n.start(natsClientNode, true, n.app, "sub", name, subject, strconv.Itoa(count), strconv.Itoa(seconds), strings.Join(urls, ","))
	p.waitFor("subscribed "+name, 20*time.Second)
	return p
}

// publish starts natsapp pub under slim exec in the clients' node, to
// member, once want subscribers have subject's subscription there.
func (n *natsLab) publish(member, subject string, count, rate, want int) *program {
	n.t.Helper()
	return n.start(natsClientNode, true, n.app, "pub", subject, strconv.Itoa(count), strconv.Itoa(rate),
		strconv.Itoa(want), "30", n.clientURL(member))
}

// natsSubResult is natsapp sub's last line.
type natsSubResult struct {
	got, dup, disorder, reconnects int
	missing                        string
}

var natsSubLine = regexp.MustCompile(`(?m)^sub (\S+) got=(\d+) dup=(\d+) disorder=(\d+) missing=(\S+) reconnects=(\d+)$`)

// subResult waits for a subscriber to end and reads its result.
func subResult(t *testing.T, p *program) natsSubResult {
	t.Helper()
	err := p.wait(40 * time.Second)
	m := natsSubLine.FindStringSubmatch(p.output())
	if err != nil || m == nil {
		t.Fatalf("%s: %v\n%s", p.name, err, p.output())
	}
	atoi := func(s string) int { v, _ := strconv.Atoi(s); return v }
	checkSupervised(t, p)
	return natsSubResult{got: atoi(m[2]), dup: atoi(m[3]), disorder: atoi(m[4]), missing: m[5], reconnects: atoi(m[6])}
}

// exactlyOnce fails t unless a subscriber got messages 0 to count-1 once
// each, in order, on one connection.
func exactlyOnce(t *testing.T, p *program, count int) {
	t.Helper()
	r := subResult(t, p)
	if r.got != count || r.dup != 0 || r.disorder != 0 || r.missing != "none" || r.reconnects != 0 {
		t.Errorf("%s: want %d messages once each, in order, no reconnect:\n%s", p.name, count, p.output())
	}
}

// published waits for a publisher to end and checks it sent them all.
func published(t *testing.T, p *program, count int) {
	t.Helper()
	if err := p.wait(40 * time.Second); err != nil || !strings.Contains(p.output(), fmt.Sprintf("pub sent=%d ", count)) {
		t.Fatalf("%s: %v\n%s", p.name, err, p.output())
	}
	checkSupervised(t, p)
}

// acrossHosts lists the host connections between h1 and h2 (as h1's
// namespace shows them).
func (n *natsLab) acrossHosts() []string {
	h2, err := n.Node("h2")
	if err != nil {
		n.t.Fatal(err)
	}
	var conns []string
	for _, c := range n.hostConnections("h1") {
		if strings.Contains(c, "-"+h2.Addr.String()+":") {
			conns = append(conns, c)
		}
	}
	return conns
}

// missingCount reads natsapp sub's missing ranges ("none", "A-B,C-D"):
// how many numbers, in how many gaps.
func missingCount(ranges string) (count, gaps int) {
	if ranges == "none" {
		return 0, 0
	}
	for _, r := range strings.Split(ranges, ",") {
		from, to, _ := strings.Cut(r, "-")
		a, _ := strconv.Atoi(from)
		b, _ := strconv.Atoi(to)
		count += b - a + 1
		gaps++
	}
	return count, gaps
}

// logSockets logs the TCP sockets of the lab's namespaces, with their
// processes (an overlay connection shows in its containers' namespaces, a
// host connection in its hosts'), and the routers' status (fallbacks).
func (n *natsLab) logSockets() {
	for _, node := range []string{"h1", "h2", "h1-c1", "h1-c2", "h2-c1", "h2-c2"} {
		nn, err := n.Node(node)
		if err != nil {
			n.t.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command("ss", "-tnpH")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := nn.Run(cmd); err != nil {
			fmt.Fprintf(&out, "ss: %v", err)
		}
		n.t.Logf("sockets of %s:\n%s", node, out.String())
	}
	for _, host := range []string{"h1", "h2"} {
		out, _ := exec.Command(slimPath, "status", "--lab", n.Name, "--host", host).CombinedOutput()
		n.t.Logf("slim status of %s:\n%s", host, out)
	}
}

// overlayRoutes lists the route connections on the overlay: the
// established TCP sockets of the members' containers on port 6222.
func (n *natsLab) overlayRoutes() []string {
	var conns []string
	for _, m := range natsMembers {
		conns = append(conns, n.containerConnections(m.node, 6222)...)
	}
	return conns
}
