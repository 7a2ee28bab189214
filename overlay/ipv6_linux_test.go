package overlay

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestIntegrationEnsureIPv6: with an IPv6 prefix, Ensure gives the
// bridge and the VXLAN device their IPv6 addresses and routes each peer's
// IPv6 subnet through its tunnel address (a permanent neighbour with the
// tunnel MAC); a second run changes nothing, and a peer that left loses
// its IPv6 route and neighbour.
func TestIntegrationEnsureIPv6(t *testing.T) {
	handle := scratchHandle(t)
	plan := threeHostPlan(t)
	plan.Config.IPv6 = netip.MustParsePrefix("2001:2::/96")
	ensure(t, handle, plan)
	bridge, _ := handle.LinkByName(BridgeName)
	vxlan, _ := handle.LinkByName(VXLANName)
	hasAddr := func(link netlink.Link, want string) {
		t.Helper()
		addrs, err := handle.AddrList(link, unix.AF_INET6)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if a.IPNet.String() == want {
				return
			}
		}
		t.Errorf("%s lacks %s: %v", link.Attrs().Name, want, addrs)
	}
	hasAddr(bridge, "2001:2::c613:101/120")
	hasAddr(vxlan, "2001:2::c613:100/128")
	routes := func() map[string]string {
		rs, err := handle.RouteList(vxlan, unix.AF_INET6)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, r := range rs {
			if r.Dst != nil && r.Gw != nil {
				m[r.Dst.String()] = r.Gw.String()
			}
		}
		return m
	}
	got := routes()
	for dst, gw := range map[string]string{"2001:2::c613:200/120": "2001:2::c613:200", "2001:2::c613:300/120": "2001:2::c613:300"} {
		if got[dst] != gw {
			t.Errorf("route to %s via %q, want %s (routes %v)", dst, got[dst], gw, got)
		}
	}
	neighs, _ := handle.NeighList(vxlan.Attrs().Index, unix.AF_INET6)
	found := false
	for _, n := range neighs {
		if n.IP.Equal(net.ParseIP("2001:2::c613:200")) && n.HardwareAddr.String() == "0a:58:c6:13:02:00" && n.State&netlink.NUD_PERMANENT != 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("no permanent IPv6 neighbour for peer 2's tunnel: %v", neighs)
	}
	if changes := ensure(t, handle, plan); len(changes) != 0 {
		t.Errorf("a second Ensure changed %q", changes)
	}
	plan.Hosts = plan.Hosts[:2]
	changes := ensure(t, handle, plan)
	if !mentions(changes, "removed the route to 2001:2::c613:300/120") || !mentions(changes, "removed the neighbour entry of 2001:2::c613:300") {
		t.Errorf("the IPv6 route and neighbour of the peer that left stayed: %q", changes)
	}
	if _, ok := routes()["2001:2::c613:300/120"]; ok {
		t.Error("the route to the peer that left is still there")
	}
}
