package cni

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/slimnet/slim/overlay"
)

// ipv6Result adds the container's IPv6 overlay address (the overlay's /96
// with its IPv4 address as the last 32 bits, docs/overlay.md) and a route
// to the whole IPv6 overlay through the gateway's IPv6 address to result,
// when the router's configuration has an IPv6 overlay (overlay_ipv6). No
// default route.
func (n *network) ipv6Result(result *current.Result, addr netip.Addr) {
	cfg := n.plan.Config
	if !cfg.HasIPv6() {
		return
	}
	gateway := net.IP(cfg.IPv6Of(n.self.Gateway()).AsSlice())
	result.IPs = append(result.IPs, &current.IPConfig{
		Interface: current.Int(1),
		Address:   *overlay.IPNet(netip.PrefixFrom(cfg.IPv6Of(addr), overlay.IPv6PrefixBits+n.self.Subnet.Bits())),
		Gateway:   gateway,
	})
	result.Routes = append(result.Routes, &types.Route{Dst: *overlay.IPNet(cfg.IPv6), GW: gateway})
}

// addressesPerAdd is how many addresses ADD gives a container: its IPv4
// overlay address, and its IPv6 one with an IPv6 overlay.
func (n *network) addressesPerAdd() int {
	if n.plan.Config.HasIPv6() {
		return 2
	}
	return 1
}

// skipDAD turns duplicate address detection off on the container's
// interface (run inside its namespace) when it gets an IPv6 overlay
// address: the address is unique by construction, and the runtime would
// otherwise wait for DAD to settle.
func (n *network) skipDAD(ifname string) error {
	if !n.plan.Config.HasIPv6() {
		return nil
	}
	path := filepath.Join("/proc/sys/net/ipv6/conf", ifname, "accept_dad")
	if err := os.WriteFile(path, []byte("0"), 0o644); err != nil {
		return fmt.Errorf("the overlay has IPv6 (overlay_ipv6) but %s's IPv6 settings cannot be written (IPv6 disabled in the container?): %w", ifname, err)
	}
	return nil
}
