package overlay

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

// HostPlan is one host's place in the overlay.
type HostPlan struct {
	// Underlay is the address peers send VXLAN packets to.
	Underlay netip.Addr
	// Subnet is the host's share of the overlay CIDR.
	Subnet netip.Prefix
}

// Gateway is the bridge's address: the first usable address of the subnet,
// the next hop of the host's containers towards the rest of the overlay.
func (h HostPlan) Gateway() netip.Addr { return h.Subnet.Addr().Next() }

// ContainerAddrProblem says why addr cannot be a container's address on
// this host ("" if it can): outside the subnet, or one of the subnet's
// reserved addresses (network/tunnel, gateway, broadcast).
func (h HostPlan) ContainerAddrProblem(addr netip.Addr) string {
	a := NewAllocator(h)
	switch {
	case !h.Subnet.Contains(addr):
		return fmt.Sprintf("is not in this host's subnet %s", h.Subnet)
	case addr == h.TunnelAddr():
		return fmt.Sprintf("is the network address of subnet %s (the host's tunnel address)", h.Subnet)
	case addr == h.Gateway():
		return fmt.Sprintf("is the host's gateway (its overlay bridge) in %s", h.Subnet)
	case addr == a.last().Next():
		return fmt.Sprintf("is the broadcast address of subnet %s", h.Subnet)
	}
	return ""
}

// ContainerRange is the first and last address a container may have.
func (h HostPlan) ContainerRange() (netip.Addr, netip.Addr) {
	a := NewAllocator(h)
	return a.first(), a.last()
}

// TunnelAddr is the address of the host's VXLAN device (the network
// address of its subnet): the next hop peers route this subnet through.
func (h HostPlan) TunnelAddr() netip.Addr { return h.Subnet.Addr() }

// TunnelMAC is the VXLAN device's MAC address, derived from the subnet so
// that every peer can compute it: 0a:58 (locally administered) followed by
// the subnet's network address.
func (h HostPlan) TunnelMAC() net.HardwareAddr {
	a := h.Subnet.Addr().As4()
	return net.HardwareAddr{0x0a, 0x58, a[0], a[1], a[2], a[3]}
}

// Plan is the overlay layout of a cluster: the configuration and each host's
// subnet and underlay address.
type Plan struct {
	Config Config
	Hosts  []HostPlan
}

// HostSubnet returns the index-th host subnet of the overlay CIDR (index 0
// is the first). Subnet 0 is usable: its network address is the tunnel
// address, not a container's.
func (c Config) HostSubnet(index int) (netip.Prefix, error) {
	count := 1 << (c.HostBits - c.CIDR.Bits())
	if index < 0 || index >= count {
		return netip.Prefix{}, fmt.Errorf("host subnet %d does not exist: %s holds %d subnets of /%d", index, c.CIDR, count, c.HostBits)
	}
	base := binary.BigEndian.Uint32(c.CIDR.Addr().AsSlice())
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], base+uint32(index)<<(32-c.HostBits))
	return netip.PrefixFrom(netip.AddrFrom4(b), c.HostBits), nil
}

// Validate checks that every host subnet lies in the overlay CIDR, that no
// two hosts share a subnet or underlay address, and that underlay
// addresses are outside the overlay.
func (p Plan) Validate() error {
	if err := p.Config.Validate(); err != nil {
		return err
	}
	seen := map[netip.Addr]int{}
	for i, h := range p.Hosts {
		if !h.Underlay.Is4() {
			return fmt.Errorf("host %d: underlay address %v is not IPv4", i+1, h.Underlay)
		}
		if p.Config.CIDR.Contains(h.Underlay) {
			return fmt.Errorf("host %d: underlay address %s lies inside overlay CIDR %s", i+1, h.Underlay, p.Config.CIDR)
		}
		if j, dup := seen[h.Underlay]; dup {
			return fmt.Errorf("hosts %d and %d share underlay address %s", j+1, i+1, h.Underlay)
		}
		seen[h.Underlay] = i
		if h.Subnet.Bits() != p.Config.HostBits || !p.Config.CIDR.Contains(h.Subnet.Addr()) {
			return fmt.Errorf("host %d: subnet %s is not a /%d inside overlay CIDR %s", i+1, h.Subnet, p.Config.HostBits, p.Config.CIDR)
		}
		for j := range i {
			if p.Hosts[j].Subnet.Overlaps(h.Subnet) {
				return fmt.Errorf("hosts %d and %d have overlapping subnets %s and %s", j+1, i+1, p.Hosts[j].Subnet, h.Subnet)
			}
		}
	}
	return nil
}

// Peers returns every host of the plan except the one at index self.
func (p Plan) Peers(self int) []HostPlan {
	peers := make([]HostPlan, 0, len(p.Hosts))
	for i, h := range p.Hosts {
		if i != self {
			peers = append(peers, h)
		}
	}
	return peers
}
