package overlay

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RemovePeer undoes AddPeer: the route to the peer's subnet, its
// neighbour and its forwarding entry (and their IPv6 twins). Entries already gone are not an
// error, so that a router can remove a peer it only half added.
func (host *Host) RemovePeer(peer HostPlan) error {
	vxlan, err := host.handle.LinkByName(VXLANName)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", VXLANName, err)
	}
	index := vxlan.Attrs().Index
	route := &netlink.Route{LinkIndex: index, Dst: IPNet(peer.Subnet), Gw: net.IP(peer.TunnelAddr().AsSlice()), Flags: int(netlink.FLAG_ONLINK)}
	neighbour := &netlink.Neigh{LinkIndex: index, Family: unix.AF_INET, IP: net.IP(peer.TunnelAddr().AsSlice())}
	fdb := &netlink.Neigh{
		LinkIndex: index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
		IP: net.IP(peer.Underlay.AsSlice()), HardwareAddr: peer.TunnelMAC(),
	}
	var errs []error
	if err := host.handle.RouteDel(route); err != nil && !gone(err) {
		errs = append(errs, fmt.Errorf("removing the route to %s: %w", peer.Subnet, err))
	}
	if err := host.handle.NeighDel(neighbour); err != nil && !gone(err) {
		errs = append(errs, fmt.Errorf("removing the neighbour entry for %s: %w", peer.TunnelAddr(), err))
	}
	if err := host.handle.NeighDel(fdb); err != nil && !gone(err) {
		errs = append(errs, fmt.Errorf("removing the forwarding entry for %s: %w", peer.Underlay, err))
	}
	if cfg := host.plan.Config; cfg.HasIPv6() {
		tunnel := net.IP(cfg.IPv6Of(peer.TunnelAddr()).AsSlice())
		route6 := &netlink.Route{LinkIndex: index, Dst: IPNet(cfg.IPv6Subnet(peer.Subnet)), Gw: tunnel, Flags: int(netlink.FLAG_ONLINK)}
		if err := host.handle.RouteDel(route6); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("removing the route to %s: %w", route6.Dst, err))
		}
		if err := host.handle.NeighDel(&netlink.Neigh{LinkIndex: index, Family: unix.AF_INET6, IP: tunnel}); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("removing the neighbour entry for %s: %w", tunnel, err))
		}
	}
	return errors.Join(errs...)
}

func gone(err error) bool { return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) }

// NewPeerHost returns a Host that only adds and removes peers of self,
// for a router that learns its peers from a cluster store (the bridge
// and the VXLAN device are made by whoever set the host up).
func NewPeerHost(handle *netlink.Handle, config Config, self HostPlan) *Host {
	return &Host{handle: handle, plan: Plan{Config: config, Hosts: []HostPlan{self}}, self: self}
}
