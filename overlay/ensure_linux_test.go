package overlay

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/internal/testenv"
)

// scratchHandle is a netlink handle in a fresh unnamed network namespace.
func scratchHandle(t *testing.T) *netlink.Handle {
	t.Helper()
	testenv.Integration(t)
	scratch, err := netns.NewScratch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scratch.Close() })
	handle, err := netlink.NewHandleAt(vnetns.NsHandle(scratch.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(handle.Close)
	return handle
}

func threeHostPlan(t *testing.T) Plan {
	t.Helper()
	p := testPlan(t)
	p.Hosts = append(slices.Clone(p.Hosts), HostPlan{Underlay: netip.MustParseAddr("198.18.0.3"), Subnet: netip.MustParsePrefix("198.19.3.0/24")})
	return p
}

func ensure(t *testing.T, handle *netlink.Handle, plan Plan) []string {
	t.Helper()
	_, changes, err := Ensure(handle, plan, 0)
	if err != nil {
		t.Fatalf("Ensure: %v (changes %q)", err, changes)
	}
	return changes
}

func mentions(changes []string, text string) bool {
	return slices.ContainsFunc(changes, func(c string) bool { return strings.Contains(c, text) })
}

// TestIntegrationEnsureIsIdempotentAndRepairs: Ensure creates the overlay,
// changes nothing the second time, puts back a route someone deleted and
// removes what belongs to a host that left the plan.
func TestIntegrationEnsureIsIdempotentAndRepairs(t *testing.T) {
	handle := scratchHandle(t)
	plan := threeHostPlan(t)
	changes := ensure(t, handle, plan)
	for _, want := range []string{"created bridge slim0", "created vxlan slim-vx", "peer 198.18.0.2", "peer 198.18.0.3"} {
		if !mentions(changes, want) {
			t.Errorf("first Ensure: changes %q do not mention %q", changes, want)
		}
	}
	if again := ensure(t, handle, plan); len(again) != 0 {
		t.Errorf("second Ensure changed %q, want nothing", again)
	}

	vxlan, _ := handle.LinkByName(VXLANName)
	route := netlink.Route{LinkIndex: vxlan.Attrs().Index, Dst: IPNet(netip.MustParsePrefix("198.19.2.0/24"))}
	if err := handle.RouteDel(&route); err != nil {
		t.Fatal(err)
	}
	if changes := ensure(t, handle, plan); !mentions(changes, "peer 198.18.0.2") || len(changes) != 1 {
		t.Errorf("after a route was deleted: changes %q", changes)
	}

	smaller := testPlan(t) // host 3 left
	changes = ensure(t, handle, smaller)
	for _, want := range []string{"route to 198.19.3.0/24", "neighbour entry of 198.19.3.0", "forwarding entry of 198.18.0.3"} {
		if !mentions(changes, want) {
			t.Errorf("after host 3 left: changes %q do not mention %q", changes, want)
		}
	}
	routes, _ := handle.RouteList(vxlan, unix.AF_INET)
	if len(routes) != 1 || routes[0].Dst.String() != "198.19.2.0/24" {
		t.Errorf("routes through %s: %v, want only 198.19.2.0/24", VXLANName, routes)
	}
}

// TestIntegrationEnsureCorrectsChangedSettings: a VXLAN device with another
// VNI is recreated, and a bridge keeps no address of an old subnet.
func TestIntegrationEnsureCorrectsChangedSettings(t *testing.T) {
	handle := scratchHandle(t)
	plan := testPlan(t)
	ensure(t, handle, plan)
	plan.Config.VNI = 77
	if changes := ensure(t, handle, plan); !mentions(changes, "recreated slim-vx: VNI 42, want 77") {
		t.Errorf("VNI change: changes %q", changes)
	}
	link, _ := handle.LinkByName(VXLANName)
	if v := link.(*netlink.Vxlan); v.VxlanId != 77 {
		t.Errorf("VNI %d after Ensure, want 77", v.VxlanId)
	}

	moved := plan
	moved.Hosts = []HostPlan{{Underlay: plan.Hosts[0].Underlay, Subnet: netip.MustParsePrefix("198.19.9.0/24")}, plan.Hosts[1]}
	changes := ensure(t, handle, moved)
	if !mentions(changes, "removed the old address 198.19.1.1/24 from slim0") || !mentions(changes, "added 198.19.9.1/24 to slim0") {
		t.Errorf("subnet change: changes %q", changes)
	}
	bridge, _ := handle.LinkByName(BridgeName)
	addrs, _ := handle.AddrList(bridge, unix.AF_INET)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "198.19.9.1/24" {
		t.Errorf("bridge addresses %v, want only 198.19.9.1/24", addrs)
	}
}

// TestIntegrationRemoveOverlay: Attached names the container ports on the
// bridge; Remove deletes both devices and is a no-op the second time.
func TestIntegrationRemoveOverlay(t *testing.T) {
	handle := scratchHandle(t)
	ensure(t, handle, testPlan(t))
	bridge, _ := handle.LinkByName(BridgeName)
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MasterIndex = "ctest0", bridge.Attrs().Index
	if err := handle.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "ctest1"}); err != nil {
		t.Fatal(err)
	}
	if names, err := Attached(handle); err != nil || !slices.Equal(names, []string{"ctest0"}) {
		t.Errorf("Attached = %v, %v; want [ctest0]", names, err)
	}
	removed, err := Remove(handle)
	if err != nil || !slices.Equal(removed, []string{VXLANName, BridgeName}) {
		t.Errorf("Remove = %v, %v", removed, err)
	}
	for _, name := range []string{VXLANName, BridgeName} {
		if _, err := handle.LinkByName(name); err == nil {
			t.Errorf("%s still there after Remove", name)
		}
	}
	if veth, err := handle.LinkByName("ctest0"); err != nil || veth.Attrs().MasterIndex != 0 {
		t.Errorf("the container port after Remove: %v (master %v), want it kept, detached", err, veth)
	}
	if removed, err := Remove(handle); err != nil || len(removed) != 0 {
		t.Errorf("second Remove = %v, %v; want nothing, no error", removed, err)
	}
	if names, err := Attached(handle); err != nil || names != nil {
		t.Errorf("Attached without a bridge = %v, %v", names, err)
	}
}
