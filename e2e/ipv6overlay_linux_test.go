package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/router/directory"
)

// IPv6 overlay addresses (lab.Spec.IPv6: 2001:2::/96 plus each
// container's IPv4 overlay address) on the IPv4 wire. An IPv6 connection
// between two Slim containers is carried by an IPv4 host connection, with
// nothing on the VXLAN device; the applications see IPv6 addresses on
// every call. A peer outside Slim reaches them over VXLAN, which carries
// IPv6 as it carries IPv4.

// ov6Payload is what a client sends: far more than maxStrayOverlayBytes.
const ov6Payload = 8 << 20

// newIPv6Lab is newLab with IPv6 overlay addresses.
func newIPv6Lab(t *testing.T, prefix string, start func(*lab.Lab, string, ...string) error) *testLab {
	t.Helper()
	requireTool(t, "python3")
	return newLabOf(t, prefix, lab.Spec{Hosts: 2, Containers: 2, IPv6: true}, start)
}

// ipv6Addr is a container's IPv6 overlay address.
func (l *testLab) ipv6Addr(node string) string {
	l.t.Helper()
	a, err := l.IPv6Of(node)
	if err != nil {
		l.t.Fatal(err)
	}
	return a.String()
}

// ov6echo runs e2e/testdata/ov6echo.py in node.
func (l *testLab) ov6echo(node string, slim bool, args ...string) *program {
	return l.start(node, slim, append([]string{"python3", ov6Script()}, args...)...)
}

func ov6Script() string {
	p, _ := filepath.Abs(filepath.Join(repoRoot, "e2e", "testdata", "ov6echo.py"))
	return p
}

// ov6Client runs a client to addr:port in node and returns its output.
func (l *testLab) ov6Client(node string, slim bool, addr string, port int, server *program) string {
	l.t.Helper()
	c := l.ov6echo(node, slim, "client", addr, fmt.Sprint(port), fmt.Sprint(ov6Payload))
	if err := c.wait(60 * time.Second); err != nil {
		l.t.Fatalf("client: %v\n%s\nserver:\n%s", err, c.output(), server.output())
	}
	return c.output()
}

// hostConnectionsIPv6 lists a host namespace's established TCP
// connections on AF_INET6 sockets (routers' exchange left out) as
// "SRC-DST": the host sockets Slim gives AF_INET6 app sockets.
func (l *testLab) hostConnectionsIPv6(host string) []string {
	l.t.Helper()
	n, _ := l.Node(host)
	var conns []string
	err := n.Do(func() error {
		sockets, err := netlink.SocketDiagTCP(unix.AF_INET6)
		if err != nil {
			return err
		}
		for _, s := range sockets {
			if s.State == 1 {
				src, dst := netip.AddrFrom16([16]byte(s.ID.Source.To16())), netip.AddrFrom16([16]byte(s.ID.Destination.To16()))
				conns = append(conns, fmt.Sprintf("[%s]:%d-[%s]:%d", src, s.ID.SourcePort, dst, s.ID.DestinationPort))
			}
		}
		return nil
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return conns
}

// wireHasNoIPv6 fails the test if a host's wire interface has IPv6 on.
func (l *testLab) wireHasNoIPv6(host string) {
	l.t.Helper()
	n, _ := l.Node(host)
	err := n.Do(func() error {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ip, _, _ := net.ParseCIDR(a.String()); ip.To4() == nil {
				return fmt.Errorf("the wire interface of %s has the IPv6 address %s", host, a)
			}
		}
		return nil
	})
	if err != nil {
		l.t.Fatal(err)
	}
}

// waitForDirectoryIPv6 is waitForDirectory for the listener that takes
// IPv6 clients of addr (an IPv4 overlay address):port.
func (l *testLab) waitForDirectoryIPv6(host, addr string, port int) {
	l.t.Helper()
	overlay := netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port))
	path := filepath.Join(l.RouterDir(host), "directory")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if table, err := os.ReadFile(path); err == nil {
			if h, found, err := directory.LookupFamily(table, overlay, true); err == nil && found && h.Port() != 0 {
				return
			}
		}
	}
	l.t.Fatalf("the directory of %s lists no listener for IPv6 clients of %s", host, overlay)
}

// wireOf is how a host's wire address shows on an AF_INET6 host socket.
func (l *testLab) wireOf(host string) string {
	n, _ := l.Node(host)
	return fmt.Sprintf("[::ffff:%s]:", n.Addr)
}

func mustContain(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: want %q in:\n%s", what, w, out)
		}
	}
}

// TestIntegrationIPv6OverlayAccelerated: a Python server on :: (its
// dual-stack default) and clients by its IPv6 overlay address, across
// hosts and on one host, and by its IPv4 address: all accelerated (VXLAN
// flat), the cross-host one carried by an IPv4 host connection (v4-mapped
// AF_INET6 host sockets; the wire has no IPv6), and every address the
// applications see is the IPv6 overlay one, in both directions.
func TestIntegrationIPv6OverlayAccelerated(t *testing.T) {
	l := newIPv6Lab(t, "qva", (*lab.Lab).StartRouters)
	const port = 7300
	server := l.ov6echo("h1-c1", true, "server", "::", fmt.Sprint(port))
	server.waitFor("listening", 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), port, 10*time.Second)
	srv6 := l.ipv6Addr("h1-c1")
	l.wireHasNoIPv6("h1")
	l.wireHasNoIPv6("h2")

	for _, c := range []struct{ name, client, clientHost, serverHost string }{
		{"cross-host", "h2-c1", "h2", "h1"},
		{"same-host", "h1-c2", "h1", "h1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l.t = t
			before := l.vxlanBytes("h1")
			cli := l.ov6echo(c.client, true, "client", srv6, fmt.Sprint(port), fmt.Sprint(ov6Payload), "2")
			cli.waitFor("client LOCAL=", 20*time.Second)
			hostConns := l.hostConnectionsIPv6(c.clientHost)
			if err := cli.wait(60 * time.Second); err != nil {
				t.Fatalf("client: %v\n%s\nserver:\n%s", err, cli.output(), server.output())
			}
			cli6 := l.ipv6Addr(c.client)
			mustContain(t, "client", cli.output(),
				fmt.Sprintf("client LOCAL=[%s]:", cli6), fmt.Sprintf("PEER=[%s]:%d DOMAIN=%d", srv6, port, unix.AF_INET6),
				fmt.Sprintf("reply v6 got %d", ov6Payload))
			mustContain(t, "server", server.output(),
				fmt.Sprintf("accepted FROM=[%s]:", cli6), fmt.Sprintf("LOCAL=[%s]:%d PEER=[%s]:", srv6, port, cli6))
			if crossed := l.vxlanBytes("h1") - before; crossed > maxStrayOverlayBytes {
				t.Errorf("%d bytes crossed the VXLAN device: the IPv6 connection was not accelerated", crossed)
			}
			// The host side: an IPv4 connection between the hosts' wire
			// addresses (v4-mapped AF_INET6 sockets), no IPv6 address.
			from, to := l.wireOf(c.clientHost), l.wireOf(c.serverHost)
			found := false
			for _, hc := range hostConns {
				if strings.HasPrefix(hc, from) && strings.Contains(hc, "-"+to) {
					found = true
				}
				if strings.Contains(hc, "2001:2:") {
					t.Errorf("an IPv6 overlay address in %s's host namespace: %s", c.clientHost, hc)
				}
			}
			if !found {
				t.Errorf("no IPv4 host connection from %s to %s in %s while the client was connected: %v", from, to, c.clientHost, hostConns)
			}
		})
	}
	t.Run("ipv4-client", func(t *testing.T) {
		l.t = t
		before := l.vxlanBytes("h1")
		out := l.ov6Client("h2-c2", true, l.containerAddr("h1-c1"), port, server)
		mustContain(t, "client", out, fmt.Sprintf("PEER=%s:%d DOMAIN=%d", l.containerAddr("h1-c1"), port, unix.AF_INET),
			fmt.Sprintf("reply v6 got %d", ov6Payload))
		mustContain(t, "server", server.output(), fmt.Sprintf("accepted FROM=[::ffff:%s]:", l.containerAddr("h2-c2")))
		if crossed := l.vxlanBytes("h1") - before; crossed > maxStrayOverlayBytes {
			t.Errorf("%d bytes crossed the VXLAN device", crossed)
		}
	})
}

// TestIntegrationIPv6OverlayFallback: with a peer outside Slim on either
// side, IPv6 connections still work, over VXLAN (which carries IPv6).
func TestIntegrationIPv6OverlayFallback(t *testing.T) {
	l := newIPv6Lab(t, "qvb", (*lab.Lab).StartRouters)
	for i, c := range []struct {
		name             string
		slimServer, slim bool
	}{{"plain-server", false, true}, {"plain-client", true, false}} {
		port := 7310 + i
		t.Run(c.name, func(t *testing.T) {
			l.t = t
			server := l.ov6echo("h1-c1", c.slimServer, "server", "::", fmt.Sprint(port))
			server.waitFor("listening", 10*time.Second)
			before := l.vxlanBytes("h1")
			out := l.ov6Client("h2-c1", c.slim, l.ipv6Addr("h1-c1"), port, server)
			mustContain(t, "client", out, fmt.Sprintf("client LOCAL=[%s]:", l.ipv6Addr("h2-c1")),
				fmt.Sprintf("reply v6 got %d", ov6Payload))
			if crossed := l.vxlanBytes("h1") - before; crossed < ov6Payload {
				t.Errorf("only %d bytes crossed the VXLAN device for an %d-byte IPv6 transfer with a peer outside Slim", crossed, ov6Payload)
			}
			server.stop()
		})
	}
}

// TestIntegrationIPv6OverlayV6OnlyListeners: an IPv6-only listener (bound
// to the container's IPv6 overlay address, or :: with IPV6_V6ONLY, as
// nginx's `listen [::]:80`) beside an IPv4 one on the same port: each
// client reaches the listener of its family, both accelerated; without
// the IPv6 one an IPv6 client is refused, as by the kernel.
func TestIntegrationIPv6OverlayV6OnlyListeners(t *testing.T) {
	l := newIPv6Lab(t, "qvc", (*lab.Lab).StartRouters)
	for i, v6 := range [][]string{{l.ipv6Addr("h1-c1")}, {"::", "v6only"}} {
		port := 7320 + i
		t.Run(v6[0], func(t *testing.T) {
			l.t = t
			s4 := l.ov6echo("h1-c1", true, "server", "0.0.0.0", fmt.Sprint(port))
			s4.waitFor("listening", 10*time.Second)
			s6 := l.ov6echo("h1-c1", true, append([]string{"server"}, v6[0], fmt.Sprint(port), strings.Join(v6[1:], ""))...)
			s6.waitFor("listening", 10*time.Second)
			l.waitForDirectory("h2", l.containerAddr("h1-c1"), port, 10*time.Second)
			l.waitForDirectoryIPv6("h2", l.containerAddr("h1-c1"), port)
			before := l.vxlanBytes("h1")
			out6 := l.ov6Client("h2-c1", true, l.ipv6Addr("h1-c1"), port, s6)
			out4 := l.ov6Client("h2-c1", true, l.containerAddr("h1-c1"), port, s4)
			mustContain(t, "IPv6 client", out6, fmt.Sprintf("reply v6 got %d", ov6Payload))
			mustContain(t, "IPv4 client", out4, fmt.Sprintf("reply v4 got %d", ov6Payload))
			if crossed := l.vxlanBytes("h1") - before; crossed > 2*maxStrayOverlayBytes {
				t.Errorf("%d bytes crossed the VXLAN device", crossed)
			}
			s6.stop()
			time.Sleep(500 * time.Millisecond)
			out6 = l.ov6Client("h2-c1", true, l.ipv6Addr("h1-c1"), port, s4)
			mustContain(t, "IPv6 client without an IPv6 listener", out6, "client failed ECONNREFUSED")
			s4.stop()
		})
	}
}

// ipv6Semantics are the semantics suite's pairings over IPv6 overlay
// addresses: both ends AF_INET6 with SLIMTEST_INET6_PREFIX (the server on
// ::, the client to the IPv6 overlay address), every address checked to
// come back in the IPv6 overlay form.
var ipv6SemanticsPairings = []struct {
	name                   string
	client, server         string
	slimClient, slimServer bool
}{
	{"cross-host", "h2-c1", "h1-c1", true, true},
	{"same-host", "h1-c2", "h1-c1", true, true},
	{"plain-client", "h2-c1", "h1-c1", false, true},
	{"plain-server", "h2-c1", "h1-c1", true, false},
}

// ov6Cmd is the command prefix of a semantics program on the lab's IPv6
// overlay.
func ov6Cmd() []string {
	return []string{"env", "SLIMTEST_INET6=1", "SLIMTEST_INET6_PREFIX=" + lab.OverlayIPv6.Addr().String()}
}

func TestIntegrationSemanticsIPv6Overlay(t *testing.T) {
	l := newIPv6Lab(t, "qvd", (*lab.Lab).StartRouters)
	port := 7400
	for _, prog := range semanticPrograms {
		for _, pair := range ipv6SemanticsPairings {
			port += 10
			t.Run(prog+"/"+pair.name, func(t *testing.T) {
				l.t = t
				cmd := append(ov6Cmd(), binPath(prog))
				runPairArgv(t, l, cmd, cmd, pair.client, pair.server, pair.slimClient, pair.slimServer, port)
			})
		}
	}
}

// TestIntegrationSemanticsIPv6OverlayInOneContainer: each program's
// selftest in one process on the container's IPv6 overlay address
// (accelerated through its own host listener) and on loopback.
func TestIntegrationSemanticsIPv6OverlayInOneContainer(t *testing.T) {
	l := newIPv6Lab(t, "qve", (*lab.Lab).StartRouters)
	for _, prog := range semanticPrograms {
		for _, addr := range []string{l.containerAddr("h1-c1"), "127.0.0.1"} {
			t.Run(prog+"/"+addr, func(t *testing.T) {
				l.t = t
				p := l.start("h1-c1", true, append(ov6Cmd(), binPath(prog), "selftest", addr)...)
				err := p.wait(90 * time.Second)
				out := p.output()
				if err != nil || strings.Contains(out, "FAIL") {
					t.Errorf("selftest failed (%v):\n%s", err, out)
				}
			})
		}
	}
}

// TestIntegrationIPv6OverlaySecureLeftAlone: in secure mode IPv6 overlay
// connections stay on the overlay (its BPF programs guard IPv4 host
// sockets only): they work, cross VXLAN, are said once under SLIM_DEBUG
// and counted as "ipv6" fallbacks.
func TestIntegrationIPv6OverlaySecureLeftAlone(t *testing.T) {
	requireSecureMode(t)
	l := newIPv6Lab(t, "qvf", (*lab.Lab).StartSecureRouters)
	const port = 7330
	server := l.ov6echo("h1-c1", true, "server", l.ipv6Addr("h1-c1"), fmt.Sprint(port))
	server.waitFor("listening", 10*time.Second)
	ctl := filepath.Join(l.RouterDir("h2"), control.SocketName)
	fallbacks := ipv6Fallbacks(t, ctl)
	before := l.vxlanBytes("h1")
	c := l.start("h2-c1", true, "env", "SLIM_DEBUG=1", "python3", ov6Script(),
		"client", l.ipv6Addr("h1-c1"), fmt.Sprint(port), fmt.Sprint(ov6Payload))
	if err := c.wait(60 * time.Second); err != nil {
		t.Fatalf("client: %v\n%s", err, c.output())
	}
	mustContain(t, "client", c.output(), fmt.Sprintf("reply v6 got %d", ov6Payload),
		"an IPv6 overlay address in secure mode (not guarded yet) is not accelerated")
	if crossed := l.vxlanBytes("h1") - before; crossed < ov6Payload {
		t.Errorf("only %d bytes crossed VXLAN: the secure-mode IPv6 connection did not use the overlay", crossed)
	}
	var got uint64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = ipv6Fallbacks(t, ctl); got > fallbacks {
			break
		}
	}
	if got != fallbacks+1 {
		t.Errorf("the router of h2 counts %d ipv6 fallbacks, want %d", got, fallbacks+1)
	}

	t.Log("a rule naming the server's IPv4 address covers its IPv6 one (the IPv6 connect walked past it)")
	rule := fmt.Sprintf("deny from container h2-c1 to %s/32 port %d", l.containerAddr("h1-c1"), port)
	if _, _, err := policyClient(t, l, "h2").PolicyAdd(context.Background(), rule, 0); err != nil {
		t.Fatal(err)
	}
	denied := l.start("h2-c1", true, "python3", ov6Script(), "client", l.ipv6Addr("h1-c1"), fmt.Sprint(port), "1")
	if err := denied.wait(60 * time.Second); err != nil {
		t.Fatalf("denied client: %v\n%s", err, denied.output())
	}
	mustContain(t, "denied client", denied.output(), "client failed ECONNREFUSED")
}

// TestIntegrationCNIIPv6: with an IPv6 overlay in the router's
// configuration, the CNI plugin's ADD gives the container its IPv6
// overlay address and a route to the IPv6 overlay through the gateway
// (no default route), in the result and in the namespace; the container
// reaches a lab container over IPv6, and an accelerated IPv6 connection
// from it to a Slim server leaves VXLAN flat; DEL leaves nothing.
func TestIntegrationCNIIPv6(t *testing.T) {
	requireTool(t, "ping")
	l := newIPv6Lab(t, "qvg", (*lab.Lab).StartRouters)
	h := newCNIHost(l, "h1")
	c := h.newContainer()
	res := h.add(c)
	addr, ok := netip.AddrFromSlice(res.IPs[0].Address.IP.To4())
	if !ok || len(res.IPs) != 2 {
		t.Fatalf("result IPs %+v: want the IPv4 overlay address, then the IPv6 one", res.IPs)
	}
	addr6 := lab.OverlayIPv6.Addr().As16()
	a4 := addr.As4()
	copy(addr6[12:], a4[:])
	want6 := netip.AddrFrom16(addr6)
	var got6 *netip.Prefix
	for _, ip := range res.IPs {
		if p, ok := netip.AddrFromSlice(ip.Address.IP); ok && p.Is6() && !p.Is4In6() {
			bits, _ := ip.Address.Mask.Size()
			pp := netip.PrefixFrom(p, bits)
			got6 = &pp
			if ip.Gateway.String() != "2001:2::c613:101" {
				t.Errorf("IPv6 gateway %s, want 2001:2::c613:101", ip.Gateway)
			}
		}
	}
	if got6 == nil || *got6 != netip.PrefixFrom(want6, 120) {
		t.Errorf("the result's IPv6 address is %v, want %s/120 (IPs %+v)", got6, want6, res.IPs)
	}
	routes := map[string]string{}
	for _, r := range res.Routes {
		routes[r.Dst.String()] = r.GW.String()
	}
	if routes["2001:2::/96"] != "2001:2::c613:101" {
		t.Errorf("result routes %v: want 2001:2::/96 via 2001:2::c613:101", routes)
	}
	out, _ := inNetns(t, c.netns, "ip", "-6", "route")
	if !strings.Contains(out, "2001:2::/96 via 2001:2::c613:101 dev eth0") || strings.Contains(out, "default") {
		t.Errorf("IPv6 routes in the container:\n%s\nwant 2001:2::/96 via 2001:2::c613:101 and no default route", out)
	}
	if out, err := inNetns(t, c.netns, "ping", "-6", "-c", "1", "-W", "3", l.ipv6Addr("h2-c1")); err != nil {
		t.Errorf("the container does not reach h2-c1 over IPv6: %v\n%s", err, out)
	}
	const port = 7340
	server := l.ov6echo("h2-c1", true, "server", "::", fmt.Sprint(port))
	server.waitFor("listening", 10*time.Second)
	l.waitForDirectory("h1", l.containerAddr("h2-c1"), port, 10*time.Second)
	sock, _ := l.RouterSocket("h1")
	before := l.vxlanBytes("h1")
	out, err := inNetns(t, c.netns, "env", "SLIM_ROUTER_SOCK="+sock, slimPath, "exec", "--", "python3", ov6Script(),
		"client", l.ipv6Addr("h2-c1"), fmt.Sprint(port), fmt.Sprint(ov6Payload))
	if err != nil {
		t.Fatalf("client in the CNI container: %v\n%s", err, out)
	}
	mustContain(t, "client", out, fmt.Sprintf("client LOCAL=[%s]:", want6), fmt.Sprintf("reply v6 got %d", ov6Payload))
	if crossed := l.vxlanBytes("h1") - before; crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device from the CNI container", crossed)
	}
	list := h.confList("1.1.0")
	c2 := h.newContainer() // through libcni, which keeps the result CHECK needs
	rt := &libcni.RuntimeConf{ContainerID: c2.id, NetNS: c2.path, IfName: "eth0"}
	cni := h.libcni()
	if err := h.do(func() error {
		_, err := cni.AddNetworkList(context.Background(), list, rt)
		if err == nil {
			err = cni.CheckNetworkList(context.Background(), list, rt)
		}
		return errors.Join(err, cni.DelNetworkList(context.Background(), list, rt))
	}); err != nil {
		t.Errorf("CHECK of an IPv6 container: %v", err)
	}
	h.del(c, c.path)
	h.assertClean(t)
}

// TestIntegrationIPv6OverlayNginx: nginx's usual pair `listen 8080;
// listen [::]:8080;` (the second IPV6_V6ONLY, nginx's default) on a lab
// with IPv6 overlay addresses: curl and wrk by the IPv6 address and curl
// by the IPv4 one reach it, each by the listener of its family, all
// accelerated.
func TestIntegrationIPv6OverlayNginx(t *testing.T) {
	for _, tool := range []string{"nginx", "curl", "wrk"} {
		requireTool(t, tool)
	}
	l := newIPv6Lab(t, "qvh", (*lab.Lab).StartRouters)
	const port = 8080
	dir := sharedTempDir(t)
	writeNginxConfig(t, dir, fmt.Sprintf("%d; listen [::]:%d", port, port))
	server := l.start("h1-c1", true, "nginx", "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"))
	addr, addr6 := l.containerAddr("h1-c1"), l.ipv6Addr("h1-c1")
	l.waitForPort(server, "h1-c2", fmt.Sprintf("%s:%d", addr, port), 20*time.Second)
	l.waitForDirectory("h2", addr, port, 10*time.Second)
	l.waitForDirectoryIPv6("h2", addr, port)
	url6 := fmt.Sprintf("http://[%s]:%d/1k.html", addr6, port)
	url4 := fmt.Sprintf("http://%s:%d/1k.html", addr, port)
	before := l.vxlanBytes("h1")
	out := runClients(t, l, "h2-c1", true, [][]string{
		{"curl", "-sS", "-o", "/dev/null", "-w", "curl %{http_code} %{remote_ip}\n", url6},
		{"curl", "-sS", "-o", "/dev/null", "-w", "curl %{http_code} %{remote_ip}\n", url4},
		{"wrk", "-t2", "-c16", "-d2s", url6},
	})
	if crossed := l.vxlanBytes("h1") - before; crossed > 1<<20 {
		t.Errorf("%d bytes crossed the VXLAN device: nginx was not accelerated", crossed)
	}
	mustContain(t, "clients", out, "curl 200 "+addr6, "curl 200 "+addr)
	if strings.Contains(out, "Socket errors") || strings.Contains(out, "Non-2xx") {
		t.Errorf("wrk saw errors:\n%s", out)
	}
	if err := positive(out, `Requests/sec:\s+([0-9.]+)`); err != nil {
		t.Error(err)
	}
	if m := regexp.MustCompile(`Requests/sec:\s+[0-9.]+`).FindString(out); m != "" {
		t.Logf("wrk over IPv6, 16 connections: %s", m)
	}
}

// boundClient binds AF_INET6 sockets to the container's own IPv6 overlay
// address (argv 1) and connects one to an IPv6 overlay address (argv 2,
// port argv 3), sending 8 MiB, and one to a v4-mapped address (argv 4),
// which the kernel refuses for a socket bound to an IPv6 address; then one
// bound to its own address v4-mapped (argv 5) to the IPv6 address, which
// the kernel refuses too.
const boundClient = `
import errno, socket, sys
own, dst6, port, dst4 = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.bind((own, 0))
bound = s.getsockname()
s.settimeout(30)
s.connect((dst6, port))
print("bound", bound[0], "connected LOCAL=[%s]:%d" % s.getsockname()[:2], "same-port", s.getsockname()[1] == bound[1], flush=True)
s.sendall(b"x" * (8 << 20))
s.shutdown(socket.SHUT_WR)
print("reply", s.recv(100).decode(), flush=True)
m = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
m.bind((own, 0))
m.settimeout(5)
try:
    m.connect(("::ffff:" + dst4, port))
    print("mapped connected", flush=True)
except OSError as e:
    print("mapped failed", errno.errorcode.get(e.errno, str(e)), flush=True)
r = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
r.bind(("::ffff:" + sys.argv[5], 0))
r.settimeout(5)
try:
    r.connect((dst6, port))
    print("reverse connected", flush=True)
except OSError as e:
    print("reverse failed", errno.errorcode.get(e.errno, str(e)), flush=True)
`

// TestIntegrationIPv6OverlayBoundClient: a client bound to its own IPv6
// overlay address is accelerated (VXLAN flat, the bound address and port
// kept); a socket bound to one family's address connecting to the other's
// fails as the kernel makes it fail, with and without Slim.
func TestIntegrationIPv6OverlayBoundClient(t *testing.T) {
	l := newIPv6Lab(t, "qvi", (*lab.Lab).StartRouters)
	const port = 7350
	server := l.ov6echo("h1-c1", true, "server", "::", fmt.Sprint(port))
	server.waitFor("listening", 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), port, 10*time.Second)
	var outs [2]string
	for i, slim := range []bool{false, true} {
		before := l.vxlanBytes("h1")
		c := l.start("h2-c1", slim, "python3", "-c", boundClient, l.ipv6Addr("h2-c1"), l.ipv6Addr("h1-c1"), fmt.Sprint(port),
			l.containerAddr("h1-c1"), l.containerAddr("h2-c1"))
		if err := c.wait(60 * time.Second); err != nil {
			t.Fatalf("client: %v\n%s", err, c.output())
		}
		outs[i] = c.output()
		mustContain(t, "client", outs[i], fmt.Sprintf("connected LOCAL=[%s]:", l.ipv6Addr("h2-c1")), "same-port True",
			fmt.Sprintf("reply v6 got %d", 8<<20), "mapped failed", "reverse failed")
		if crossed := l.vxlanBytes("h1") - before; slim && crossed > maxStrayOverlayBytes {
			t.Errorf("%d bytes crossed the VXLAN device: the bound client was not accelerated", crossed)
		}
	}
	failures := regexp.MustCompile(`(mapped|reverse) \w+ \S*`)
	if plain, slim := failures.FindAllString(outs[0], -1), failures.FindAllString(outs[1], -1); !slices.Equal(plain, slim) {
		t.Errorf("connects across families from bound sockets: %q with Slim, %q without", slim, plain)
	}
}

// TestIntegrationIPv6OverlayIperf3: `iperf3 -s` with its defaults (one
// dual-stack socket on ::) and `iperf3 -c` by the server's IPv6 overlay
// address: accelerated, and iperf3 reports IPv6 overlay addresses only.
func TestIntegrationIPv6OverlayIperf3(t *testing.T) {
	requireTool(t, "iperf3")
	l := newIPv6Lab(t, "qvj", (*lab.Lab).StartRouters)
	const port = 6600
	server := l.start("h1-c1", true, "iperf3", "--forceflush", "-s", "-1", "-p", fmt.Sprint(port))
	server.waitFor("Server listening", 10*time.Second)
	l.waitForDirectoryIPv6("h2", l.containerAddr("h1-c1"), port)
	before := l.vxlanBytes("h1")
	client := l.start("h2-c1", true, "iperf3", "-c", l.ipv6Addr("h1-c1"), "-p", fmt.Sprint(port), "-n", fmt.Sprint(transferBytes))
	if err := client.wait(60 * time.Second); err != nil {
		t.Fatalf("iperf3 client: %v\n%s\nserver:\n%s", err, client.output(), server.output())
	}
	if err := server.wait(10 * time.Second); err != nil {
		t.Fatalf("iperf3 server: %v\n%s", err, server.output())
	}
	if crossed := l.vxlanBytes("h1") - before; crossed > 1<<20 {
		t.Errorf("VXLAN carried %d bytes of a %d-byte iperf3 transfer over IPv6: not accelerated", crossed, transferBytes)
	}
	out := client.output() + server.output()
	mustContain(t, "iperf3", out, "local "+l.ipv6Addr("h2-c1"), "connected to "+l.ipv6Addr("h1-c1"), "Accepted connection from "+l.ipv6Addr("h2-c1"))
	if strings.Contains(out, "198.18.") || strings.Contains(out, "::ffff:") {
		t.Errorf("iperf3 reported a host or v4-mapped address:\n%s", out)
	}
	if m := regexp.MustCompile(`[0-9.]+ [GM]bits/sec.*receiver`).FindString(client.output()); m != "" {
		t.Logf("iperf3 over IPv6: %s", m)
	}
}

// TestIntegrationIPv6OverlayOnEtcd: routers that learn their peers from
// the cluster store route the peers' IPv6 subnets too, and accelerate an
// IPv6 connection between hosts.
func TestIntegrationIPv6OverlayOnEtcd(t *testing.T) {
	requireTool(t, "python3")
	l := newEtcdLabWith(t, "qvk", lab.Spec{Hosts: 2, Containers: 1, IPv6: true}, (*lab.Lab).StartRouters)
	const port = 7360
	server := l.ov6echo("h1-c1", true, "server", "::", fmt.Sprint(port))
	server.waitFor("listening", 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), port, storeWait)
	for _, slim := range []bool{false, true} {
		before := l.vxlanBytes("h1")
		out := l.ov6Client("h2-c1", slim, l.ipv6Addr("h1-c1"), port, server)
		mustContain(t, "client", out, fmt.Sprintf("reply v6 got %d", ov6Payload))
		crossed := l.vxlanBytes("h1") - before
		if slim && crossed > maxStrayOverlayBytes {
			t.Errorf("%d bytes crossed the VXLAN device", crossed)
		}
		if !slim && crossed < ov6Payload {
			t.Errorf("a plain IPv6 client's %d bytes did not cross VXLAN (%d did)", ov6Payload, crossed)
		}
	}
}
