package lab

import (
	"errors"
	"fmt"
	"net/netip"
)

// RoutedCIDR holds the subnets of routed containers: host I's is
// 198.18.(128+I).0/24, routed between hosts over the wire to that host's
// wire address, with no encapsulation (as Flannel's host-gw or Cilium's
// native routing do). They are the bench's anchor: the best a
// packet-based container network does without a tunnel.
var RoutedCIDR = netip.MustParsePrefix("198.18.128.0/17")

// Attachment is how a routed container is linked to its host.
type Attachment string

const (
	// AttachVeth is a veth pair, the host answering ARP for the rest of
	// the network (proxy ARP) and routing to the container's /32.
	AttachVeth Attachment = "veth"
	// AttachNetkit is a netkit pair in L3 mode (Linux 6.7+; no ARP),
	// without programs: it forwards every packet.
	AttachNetkit Attachment = "netkit"
)

// ErrNoNetkit is returned by EnsureRouted when the kernel cannot create a
// netkit device.
var ErrNoNetkit = errors.New("the kernel has no netkit devices (Linux 6.7+, CONFIG_NETKIT)")

// routedHost is the last byte of each attachment's container address in
// its host's routed subnet.
var routedHost = map[Attachment]byte{AttachVeth: 2, AttachNetkit: 3}

// Validate reports an unknown attachment.
func (a Attachment) Validate() error {
	if _, ok := routedHost[a]; !ok {
		return fmt.Errorf("routed containers attach by veth or netkit, not %q", a)
	}
	return nil
}

// routedSubnet is host i's routed subnet (1-based).
func routedSubnet(i int) netip.Prefix {
	a := RoutedCIDR.Addr().As4()
	a[2] += byte(i)
	return netip.PrefixFrom(netip.AddrFrom4(a), 24)
}

// routedAddr is the address of host i's routed container of kind a.
func routedAddr(i int, a Attachment) netip.Addr {
	b := routedSubnet(i).Addr().As4()
	b[3] = routedHost[a]
	return netip.AddrFrom4(b)
}

// routedName is the node name of host's routed container of kind a
// (h1-veth, h1-netkit): never one of the overlay's hI-cJ.
func routedName(host string, a Attachment) string { return host + "-" + string(a) }

// hostSideName is the host's end of a routed container's link.
func hostSideName(a Attachment) string { return "r" + string(a) }
