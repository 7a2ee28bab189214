package secure

import (
	"net/netip"
	"testing"
)

// manyRoutes are n routes of overlay listeners to host listeners.
func manyRoutes(n int) map[netip.AddrPort]netip.AddrPort {
	routes := make(map[netip.AddrPort]netip.AddrPort, n)
	host := netip.MustParseAddr("198.18.0.1")
	for i := range n {
		overlay := netip.AddrFrom4([4]byte{198, 19, byte(i / 250 % 256), byte(2 + i%250)})
		routes[netip.AddrPortFrom(overlay, uint16(8000+i/64000))] = netip.AddrPortFrom(host, uint16(10000+i%50000))
	}
	return routes
}

// TestIntegrationRoutesHoldAClusterDirectory: slim_routes takes more
// routes than the object file's 65536 (a cluster of 1000 hosts with 100
// listeners each), and a smaller directory afterwards leaves exactly its
// routes. Once, the 65537th route failed ("no space") on every change, and
// the listeners past it were not accelerated in secure mode.
func TestIntegrationRoutesHoldAClusterDirectory(t *testing.T) {
	_, pins := enterTestRouterCgroup(t)
	d, err := Load(pins)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	all := manyRoutes(100000)
	if err := d.SetRoutes(all); err != nil {
		t.Fatalf("100,000 routes: %v", err)
	}
	fewer := manyRoutes(1000)
	if err := d.SetRoutes(fewer); err != nil {
		t.Fatal(err)
	}
	held, err := d.readRoutes()
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != len(fewer) {
		t.Fatalf("the map holds %d routes after a directory of %d", len(held), len(fewer))
	}
	for o, h := range fewer {
		if held[slimAddr(o)] != slimAddr(h) {
			t.Fatalf("route of %v: %+v, want %v", o, held[slimAddr(o)], h)
		}
	}
}
