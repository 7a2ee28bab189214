package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	named "github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/internal/testenv"
	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/router"
)

// Bounds of the cluster-store tests: the member lease is the lab's 10 s.
const (
	storeWait   = 30 * time.Second
	payloadSize = 256 << 10 // what crosses the overlay if a connection is not accelerated
)

// newEtcdLab is a lab of hosts hosts, one container each, whose routers
// take the cluster from the lab's 3-member etcd.
func newEtcdLab(t *testing.T, prefix string, hosts int) *testLab {
	t.Helper()
	return newEtcdLabWith(t, prefix, lab.Spec{Hosts: hosts, Containers: 1}, (*lab.Lab).StartRouters)
}

// newEtcdLabWith is a lab of spec on the lab's etcd whose routers start
// (each host's container(s) with it).
func newEtcdLabWith(t *testing.T, prefix string, spec lab.Spec, start func(*lab.Lab, string, ...string) error) *testLab {
	t.Helper()
	testenv.Integration(t)
	testenv.Tools(t, "etcd", "python3")
	spec.Store = lab.StoreEtcd
	return newLabOf(t, prefix, spec, start)
}

func clusterScript() string { return testdataPath("clusterecho.py") }

// serve starts an accelerated echo server in node and waits for it.
func (l *testLab) serve(node string, port int) *program {
	l.t.Helper()
	p := l.start(node, true, "python3", clusterScript(), "server", strconv.Itoa(port), "120")
	p.waitFor("LISTENING", 10*time.Second)
	return p
}

// exchange runs an accelerated client from node to addr:port and checks
// that it got its bytes back without the overlay carrying them.
func (l *testLab) exchange(node, addr string, port int) {
	l.t.Helper()
	host, _ := l.HostOf(node)
	before := l.vxlanBytes(host.Name)
	p := l.start(node, true, "python3", clusterScript(), "client", addr, strconv.Itoa(port), strconv.Itoa(payloadSize))
	if err := p.wait(15 * time.Second); err != nil || !strings.Contains(p.output(), "OK") {
		l.t.Fatalf("%s -> %s:%d: %v\n%s", node, addr, port, err, p.output())
	}
	if grew := l.vxlanBytes(host.Name) - before; grew > payloadSize/4 {
		l.t.Fatalf("%s -> %s:%d was not accelerated: the overlay carried %d bytes", node, addr, port, grew)
	}
}

// waitForDirectoryAll waits until every host's table lists addr:port.
func (l *testLab) waitForDirectoryAll(addr string, port int) {
	l.t.Helper()
	for _, h := range l.Hosts {
		l.waitForDirectory(h.Name, addr, port, storeWait)
	}
}

// waitForNoDirectory waits until host's table no longer lists addr:port.
func (l *testLab) waitForNoDirectory(host, addr string, port int) {
	l.t.Helper()
	for deadline := time.Now().Add(storeWait); l.directoryLists(host, addr, port); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			l.t.Fatalf("%s's directory still lists %s:%d after %v", host, addr, port, storeWait)
		}
	}
}

// partitionFromEtcd cuts host off from the etcd members both ways
// (blackhole routes in host's namespace to the members, and in theirs to
// host: a one-way cut would still let etcd's watch events in); the
// returned function heals it.
func (l *testLab) partitionFromEtcd(host string) (heal func()) {
	l.t.Helper()
	n, _ := l.Node(host)
	blackhole := func(a netip.Addr) *netlink.Route {
		return &netlink.Route{Dst: &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(32, 32)}, Type: unix.RTN_BLACKHOLE}
	}
	type cut struct {
		node  lab.Node
		route *netlink.Route
	}
	var cuts []cut
	for _, m := range l.Etcd {
		cuts = append(cuts, cut{n, blackhole(m.Addr)}, cut{lab.Node{Name: m.Name, Netns: m.Netns}, blackhole(n.Addr)})
	}
	change := func(op func(*netlink.Route) error) error {
		for _, c := range cuts {
			if err := c.node.Do(func() error { return op(c.route) }); err != nil {
				return fmt.Errorf("%s: %w", c.node.Name, err)
			}
		}
		return nil
	}
	if err := change(netlink.RouteAdd); err != nil {
		l.t.Fatalf("partitioning %s from etcd: %v", host, err)
	}
	healed := false
	heal = func() {
		if !healed {
			healed = true
			if err := change(netlink.RouteDel); err != nil {
				l.t.Errorf("healing %s's partition: %v", host, err)
			}
		}
	}
	l.t.Cleanup(heal)
	return heal
}

// waitForStatus waits until slim status of host's router says every one
// of wants.
func (l *testLab) waitForStatus(host string, wants ...string) {
	l.t.Helper()
	var out []byte
	for deadline := time.Now().Add(storeWait); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var err error
		out, err = exec.Command(slimPath, "status", "--lab", l.Name, "--host", host).CombinedOutput()
		missing := err != nil
		for _, want := range wants {
			missing = missing || !strings.Contains(string(out), want)
		}
		if !missing {
			return
		}
	}
	l.t.Fatalf("slim status of %s does not say %q after %v:\n%s", host, wants, storeWait, out)
}

// routerConfigs reads every host's router configuration, by host.
func (l *testLab) routerConfigs() map[string]string {
	l.t.Helper()
	configs := map[string]string{}
	for _, h := range l.Hosts {
		data, err := os.ReadFile(l.routerConfigPath(h.Name))
		if err != nil {
			l.t.Fatal(err)
		}
		configs[h.Name] = string(data)
	}
	return configs
}

// waitForSavedPeers waits until the cluster state host's router saved
// lists n peer hosts.
func (l *testLab) waitForSavedPeers(host string, n int) {
	l.t.Helper()
	var saved struct{ Claims []json.RawMessage }
	for deadline := time.Now().Add(storeWait); len(saved.Claims) != n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			l.t.Fatalf("the router of %s saved %d peers, not %d, after %v", host, len(saved.Claims), n, storeWait)
		}
		if data, err := os.ReadFile(filepath.Join(l.RouterDir(host), "cluster.json")); err == nil {
			json.Unmarshal(data, &saved)
		}
	}
}

// watchRouteRemovals follows host's routing table; the returned function
// stops and lists the overlay routes removed meanwhile.
func (l *testLab) watchRouteRemovals(host string) func() []string {
	l.t.Helper()
	n, _ := l.Node(host)
	ns, err := netns.GetFromPath(named.Path(n.Netns))
	if err != nil {
		l.t.Fatal(err)
	}
	defer ns.Close()
	updates, done := make(chan netlink.RouteUpdate, 64), make(chan struct{})
	if err := netlink.RouteSubscribeWithOptions(updates, done, netlink.RouteSubscribeOptions{Namespace: &ns}); err != nil {
		l.t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		removed []string
	)
	go func() {
		for u := range updates {
			if u.Type == unix.RTM_DELROUTE && u.Dst != nil && lab.OverlayCIDR.Contains(netip.MustParseAddr(u.Dst.IP.String())) {
				mu.Lock()
				removed = append(removed, u.Dst.String())
				mu.Unlock()
			}
		}
	}()
	stopped := false
	stop := func() []string {
		if !stopped {
			stopped = true
			close(done)
		}
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(removed)
	}
	l.t.Cleanup(func() { stop() })
	return stop
}

// routesTo says whether host routes the overlay to subnet.
func (l *testLab) routesTo(host string, subnet netip.Prefix) bool {
	l.t.Helper()
	n, _ := l.Node(host)
	found := false
	err := n.Do(func() error {
		routes, err := netlink.RouteList(nil, unix.AF_INET)
		for _, r := range routes {
			if r.Dst != nil && r.Dst.String() == subnet.String() {
				found = true
			}
		}
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return found
}

// TestIntegrationEtcdLab runs a lab of four hosts on etcd through what
// the cluster store must survive, checking at each step what a user
// would: accelerated connections, directory tables, overlay routes.
func TestIntegrationEtcdLab(t *testing.T) {
	l := newEtcdLab(t, "ce", 4)
	h1, h2, h3 := l.containerAddr("h1-c1"), l.containerAddr("h2-c1"), l.containerAddr("h3-c1")
	l.serve("h1-c1", 8000)
	l.waitForDirectoryAll(h1, 8000)
	l.exchange("h4-c1", h1, 8000)

	t.Log("a restarted router has the whole directory as soon as it serves, and keeps its peers' routes throughout")
	l.waitForSavedPeers("h2", 3) // saved at most once a second: a router killed sooner restarts from the state before
	removals := l.watchRouteRemovals("h2")
	l.restartRouter("h2", l.killRouter("h2"))
	if !l.directoryLists("h2", h1, 8000) {
		t.Fatal("the restarted router of h2 serves without h1's listener in its directory")
	}
	time.Sleep(time.Second) // a route removed late, in the first repair, counts too
	if gone := removals(); len(gone) > 0 {
		t.Fatalf("the restarted router of h2 removed peers' routes: %v", gone)
	}
	l.exchange("h2-c1", h1, 8000)

	t.Log("one etcd member killed: new listeners still reach every host")
	if err := l.StopEtcd(0, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	l.serve("h3-c1", 8001)
	l.waitForDirectoryAll(h3, 8001)
	l.exchange("h4-c1", h3, 8001)

	t.Log("all of etcd stopped: connections and known listeners keep working, nothing hangs")
	held := l.start("h2-c1", true, "python3", clusterScript(), "hold", h1, "8000", "20")
	held.waitFor("CONNECTED", 10*time.Second)
	for i := 1; i < len(l.Etcd); i++ {
		if err := l.StopEtcd(i, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	l.serve("h2-c1", 8002) // a listen with etcd down returns
	l.exchange("h4-c1", h1, 8000)
	l.exchange("h1-c1", h3, 8001)
	held.waitFor("HELD 10", 15*time.Second) // seconds the connection lasted, etcd down since about 1 s
	if strings.Contains(held.output(), "CLOSED") {
		t.Fatalf("a connection broke while etcd was down:\n%s", held.output())
	}
	l.waitForStatus("h2", "store    etcd DISCONNECTED", "this host's listeners are not published yet")

	t.Log("h2's router restarted while etcd is down: it serves its known destinations from its saved state")
	restarted := time.Now()
	l.restartRouter("h2", l.killRouter("h2"))
	t.Logf("a router restarted with etcd down served after %v", time.Since(restarted).Round(time.Millisecond))
	if !l.directoryLists("h2", h1, 8000) || !l.directoryLists("h2", h3, 8001) {
		t.Fatal("the router restarted with etcd down serves without the listeners it knew")
	}
	if !l.routesTo("h2", l.Hosts[0].Subnet) {
		t.Fatalf("the router restarted with etcd down does not route to h1's subnet %s", l.Hosts[0].Subnet)
	}
	l.exchange("h2-c1", h1, 8000)
	l.exchange("h2-c1", h3, 8001)
	l.waitForStatus("h2", "store    etcd DISCONNECTED", "NOT JOINED")

	t.Log("etcd back: what could not be published lands")
	for i := range l.Etcd {
		if err := l.StartEtcd(i); err != nil {
			t.Fatal(err)
		}
	}
	l.waitForDirectoryAll(h2, 8002)
	l.exchange("h3-c1", h2, 8002)
	l.waitForStatus("h2", "store    etcd connected", "4 members")
	l.waitForStatus("h2", storePeerLines(l, "h2")...) // it showed no peers on a store
	if out, _ := exec.Command(slimPath, "status", "--lab", l.Name, "--host", "h2").CombinedOutput(); strings.Contains(string(out), "NOT JOINED") {
		t.Fatalf("h2's router has not joined since etcd came back:\n%s", out)
	}

	t.Log("h3 partitioned from etcd: the others drop its listeners, it keeps its state; healed, all comes back")
	heal := l.partitionFromEtcd("h3")
	l.serve("h3-c1", 8003)
	l.waitForNoDirectory("h1", h3, 8001)
	if !l.directoryLists("h3", h1, 8000) {
		t.Fatal("the partitioned host lost its directory")
	}
	l.exchange("h3-c1", h1, 8000)
	heal()
	l.waitForDirectoryAll(h3, 8003)
	l.waitForDirectory("h1", h3, 8001, storeWait)
	l.exchange("h4-c1", h3, 8003)

	t.Log("h2's router, its config naming no subnet, gets its own back from the store and records it for slim overlay up")
	l.restartWithSubnetFromStore("h2")
	l.exchange("h2-c1", h1, 8000)
	l.exchange("h4-c1", h2, 8002)

	t.Log("h5 added while traffic runs: no other host's configuration changes, it reaches and is reached accelerated")
	traffic := l.start("h1-c1", true, "python3", clusterScript(), "hold", h3, "8003", "15")
	traffic.waitFor("CONNECTED", 10*time.Second)
	configs := l.routerConfigs()
	if _, err := l.AddHost(1); err != nil {
		t.Fatal(err)
	}
	if err := l.StartHostRouter("h5", slimPath, "--verbose"); err != nil {
		t.Fatal(err)
	}
	h5 := l.containerAddr("h5-c1")
	l.serve("h5-c1", 8005)
	l.waitForDirectoryAll(h5, 8005)
	l.exchange("h1-c1", h5, 8005)
	l.exchange("h5-c1", h1, 8000)
	l.exchange("h5-c1", h3, 8003)
	traffic.waitFor("HELD 5", 15*time.Second)
	if strings.Contains(traffic.output(), "CLOSED") {
		t.Fatalf("a connection broke while h5 was added:\n%s", traffic.output())
	}
	for host, config := range configs {
		if now, err := os.ReadFile(l.routerConfigPath(host)); err != nil || string(now) != config {
			t.Errorf("adding h5 changed the router configuration of %s (%v)", host, err)
		}
	}

	t.Log("h4 leaves: the others stop routing to its subnet")
	subnet := l.Hosts[3].Subnet
	if !l.routesTo("h1", subnet) {
		t.Fatalf("h1 has no route to h4's subnet %s", subnet)
	}
	l.killRouter("h4")
	leave := exec.Command(slimPath, "router", "--config", l.routerConfigPath("h4"), "--leave")
	n, _ := l.Node("h4")
	if err := n.Run(leave); err != nil {
		t.Fatalf("slim router --leave: %v", err)
	}
	for deadline := time.Now().Add(storeWait); l.routesTo("h1", subnet); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("h1 still routes to %s after h4 left", subnet)
		}
	}
}

// restartWithSubnetFromStore restarts host's router with its config's
// subnet removed (the store is to give it) and checks that it got its
// subnet back, recorded it, and that slim overlay up reads it there.
func (l *testLab) restartWithSubnetFromStore(host string) {
	l.t.Helper()
	var subnet netip.Prefix
	for _, h := range l.Hosts {
		if h.Name == host {
			subnet = h.Subnet
		}
	}
	proc := l.killRouter(host)
	path := l.routerConfigPath(host)
	config, err := router.LoadConfig(path)
	if err != nil {
		l.t.Fatal(err)
	}
	config.Hosts[0].Subnet = ""
	if err := config.Save(path); err != nil {
		l.t.Fatal(err)
	}
	l.restartRouter(host, proc)
	joined, err := config.WithStoreSubnet()
	if err != nil {
		l.t.Fatalf("after the restart: %v", err)
	}
	if got := joined.Hosts[0].Subnet; got != subnet.String() {
		l.t.Fatalf("the store gave %s's router %s, not its subnet %s back", host, got, subnet)
	}
	n, _ := l.Node(host)
	var out strings.Builder
	up := exec.Command(slimPath, "overlay", "up", "--config", path)
	up.Stdout, up.Stderr = &out, &out
	if err := n.Run(up); err != nil {
		l.t.Fatalf("slim overlay up with the subnet from the store: %v\n%s", err, out.String())
	}
}

// storePeerLines are the lines `slim status` of host shows for the other
// hosts of an etcd lab, all up.
func storePeerLines(l *testLab, host string) []string {
	var lines []string
	for _, h := range l.Hosts {
		if h.Name != host {
			lines = append(lines, fmt.Sprintf("peer     %s (%s): connected", h.Wire.Addr(), h.Subnet))
		}
	}
	return lines
}
