package lab

import (
	"errors"
	"testing"

	"github.com/slimnet/slim/internal/testenv"
)

// TestIntegrationRoutedContainers builds routed containers (veth, and
// netkit where the kernel has it) on a lab and checks what a user would:
// they reach each other across the wire without the overlay's VXLAN
// device carrying a byte, a second call reuses them, and Down removes them.
func TestIntegrationRoutedContainers(t *testing.T) {
	requireRoot(t)
	name := uniqueName("rtd")
	l := upForTest(t, Spec{Name: name, Hosts: 2, Containers: 1})
	for _, a := range []Attachment{AttachVeth, AttachNetkit} {
		t.Run(string(a), func(t *testing.T) {
			nodes, err := l.EnsureRouted(a)
			if a == AttachNetkit && errors.Is(err, ErrNoNetkit) {
				testenv.KernelFeature(t, "netkit", err)
			}
			if err != nil {
				t.Fatalf("EnsureRouted(%s): %v", a, err)
			}
			if len(nodes) != 2 || nodes[0].Addr != routedAddr(1, a) || nodes[1].Addr != routedAddr(2, a) {
				t.Fatalf("nodes %+v, want one per host at %v and %v", nodes, routedAddr(1, a), routedAddr(2, a))
			}
			h1 := node(t, l, "h1")
			before, err := h1.VXLANBytes()
			if err != nil {
				t.Fatal(err)
			}
			tcpEcho(t, nodes[1], nodes[0])
			tcpEcho(t, nodes[0], nodes[1])
			ping(t, nodes[1], node(t, l, "h1"))
			after, err := h1.VXLANBytes()
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Errorf("%d bytes crossed h1's VXLAN device: routed traffic must not be encapsulated", after-before)
			}
			again, err := l.EnsureRouted(a)
			if err != nil || len(again) != 2 || again[0] != nodes[0] {
				t.Errorf("second EnsureRouted(%s): %+v, %v; want the same containers", a, again, err)
			}
			tcpEcho(t, nodes[1], nodes[0])
		})
	}
	if err := Down(name); err != nil {
		t.Fatal(err)
	}
	if left, err := Leftovers(name); err != nil || len(left) > 0 {
		t.Errorf("after Down: %v left (%v)", left, err)
	}
}
