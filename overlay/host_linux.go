package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Interface names the overlay creates in a host's network namespace.
const (
	BridgeName = "slim0"
	VXLANName  = "slim-vx"
)

// Host sets up and maintains the overlay in one host's network namespace.
type Host struct {
	handle *netlink.Handle
	plan   Plan
	self   HostPlan
	index  int // of self in plan.Hosts
}

// NewHost returns a Host that configures the overlay for plan.Hosts[self]
// through handle, which points at that host's network namespace.
func NewHost(handle *netlink.Handle, plan Plan, self int) (*Host, error) {
	if err := plan.Validate(); err != nil {
		return nil, err
	}
	if self < 0 || self >= len(plan.Hosts) {
		return nil, fmt.Errorf("host index %d out of range of %d hosts", self, len(plan.Hosts))
	}
	return &Host{handle: handle, plan: plan, self: plan.Hosts[self], index: self}, nil
}

// Up creates (or adopts, if present) the bridge and the VXLAN device and
// installs forwarding state for every peer in the plan. It is idempotent, so
// a restarted router can call it again. Ensure does the same and reports
// what it changed.
func (host *Host) Up() error {
	_, err := host.sync()
	return err
}

// ensureLink creates link, or returns the existing link of that name if it
// has the same type. Of two callers creating it at once, the loser adopts
// the winner's.
func (host *Host) ensureLink(link netlink.Link) (netlink.Link, error) {
	name := link.Attrs().Name
	existing, err := host.handle.LinkByName(name)
	if err == nil {
		if existing.Type() != link.Type() {
			return nil, fmt.Errorf("interface %s exists but is a %s, not a %s", name, existing.Type(), link.Type())
		}
		return existing, nil
	}
	var notFound netlink.LinkNotFoundError
	if !errors.As(err, &notFound) {
		return nil, fmt.Errorf("looking up %s: %w", name, err)
	}
	if err := host.handle.LinkAdd(link); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("creating %s %s: %w", link.Type(), name, err)
	}
	return host.handle.LinkByName(name)
}

// AddPeer routes the peer's subnet through the VXLAN device to the peer's
// tunnel endpoint, with static neighbour and FDB entries so that no packet
// is flooded or learned; with an IPv6 overlay, its IPv6 subnet too.
func (host *Host) AddPeer(peer HostPlan) error {
	vxlan, err := host.handle.LinkByName(VXLANName)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", VXLANName, err)
	}
	index := vxlan.Attrs().Index
	fdb := &netlink.Neigh{
		LinkIndex:    index,
		Family:       unix.AF_BRIDGE,
		State:        netlink.NUD_PERMANENT,
		Flags:        netlink.NTF_SELF,
		IP:           net.IP(peer.Underlay.AsSlice()),
		HardwareAddr: peer.TunnelMAC(),
	}
	if err := host.handle.NeighSet(fdb); err != nil {
		return fmt.Errorf("adding forwarding entry for %s: %w", peer.Underlay, err)
	}
	neighbour := &netlink.Neigh{
		LinkIndex:    index,
		Family:       unix.AF_INET,
		State:        netlink.NUD_PERMANENT,
		IP:           net.IP(peer.TunnelAddr().AsSlice()),
		HardwareAddr: peer.TunnelMAC(),
	}
	if err := host.handle.NeighSet(neighbour); err != nil {
		return fmt.Errorf("adding neighbour entry for %s: %w", peer.TunnelAddr(), err)
	}
	route := &netlink.Route{
		LinkIndex: index,
		Dst:       IPNet(peer.Subnet),
		Gw:        net.IP(peer.TunnelAddr().AsSlice()),
		Flags:     int(netlink.FLAG_ONLINK),
	}
	if err := host.handle.RouteReplace(route); err != nil {
		return fmt.Errorf("adding route to %s: %w", peer.Subnet, err)
	}
	if host.plan.Config.HasIPv6() {
		return host.addPeer6(index, peer)
	}
	return nil
}

// Container is a network namespace to attach to the overlay.
type Container struct {
	// HostSide names the veth end left on the host, on the bridge; it must
	// be unique on the host and at most 15 bytes.
	HostSide string
	// Namespace is the container's network namespace.
	Namespace netns.NsHandle
	// Addr is the container's overlay address (see Allocator).
	Addr netip.Addr
}

// ContainerInterface is the name of the overlay interface in a container.
const ContainerInterface = "eth0"

// Attach connects a container to the host's bridge with a veth pair, gives
// its end (eth0) the overlay address and routes the whole overlay CIDR
// through the host's gateway. No default route is added.
func (host *Host) Attach(c Container) error {
	bridge, err := host.handle.LinkByName(BridgeName)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", BridgeName, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = c.HostSide
	attrs.MTU = host.plan.Config.MTU()
	attrs.MasterIndex = bridge.Attrs().Index
	veth := &netlink.Veth{
		LinkAttrs:     attrs,
		PeerName:      ContainerInterface,
		PeerNamespace: netlink.NsFd(c.Namespace),
	}
	if err := host.handle.LinkAdd(veth); err != nil {
		return fmt.Errorf("creating veth %s: %w", c.HostSide, err)
	}
	if err := host.handle.LinkSetUp(veth); err != nil {
		return fmt.Errorf("bringing %s up: %w", c.HostSide, err)
	}
	return host.configureContainer(c)
}

func (host *Host) configureContainer(c Container) error {
	handle, err := netlink.NewHandleAt(c.Namespace)
	if err != nil {
		return fmt.Errorf("opening netlink in container namespace: %w", err)
	}
	defer handle.Close()
	for _, name := range []string{"lo", ContainerInterface} {
		link, err := handle.LinkByName(name)
		if err != nil {
			return fmt.Errorf("container %s: %w", name, err)
		}
		if name == ContainerInterface {
			addr := netip.PrefixFrom(c.Addr, host.plan.Config.HostBits)
			if err := handle.AddrReplace(link, netlinkAddr(addr)); err != nil {
				return fmt.Errorf("adding %s to container: %w", addr, err)
			}
		}
		if err := handle.LinkSetUp(link); err != nil {
			return fmt.Errorf("bringing container %s up: %w", name, err)
		}
	}
	link, _ := handle.LinkByName(ContainerInterface)
	route := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       IPNet(host.plan.Config.CIDR),
		Gw:        net.IP(host.self.Gateway().AsSlice()),
	}
	if err := handle.RouteReplace(route); err != nil {
		return fmt.Errorf("routing %s through %s in container: %w", host.plan.Config.CIDR, host.self.Gateway(), err)
	}
	return host.configureContainer6(handle, link, c.Addr)
}

func netlinkAddr(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: IPNet(p)}
}

// IPNet converts a prefix for the netlink library.
func IPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
