package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Ensure brings a host's overlay devices to what the plan says: it creates
// the bridge and the VXLAN device if they are missing, corrects their
// addresses and VXLAN settings, installs every peer's route and static
// neighbour and FDB entries, and removes those of hosts no longer in the
// plan. It is idempotent: the router runs it at start and then every few
// seconds, the lab for each of its hosts, the CNI plugin when the bridge is
// missing. It returns the Host (for Attach) and what it changed, one line
// per change, empty when everything was in place.
func Ensure(handle *netlink.Handle, plan Plan, self int) (*Host, []string, error) {
	host, err := NewHost(handle, plan, self)
	if err != nil {
		return nil, nil, err
	}
	changes, err := host.sync()
	return host, changes, err
}

// sync is Ensure's work on a Host.
func (host *Host) sync() ([]string, error) {
	var changes []string
	note := func(format string, args ...any) { changes = append(changes, fmt.Sprintf(format, args...)) }
	if err := host.syncBridge(note); err != nil {
		return changes, err
	}
	if err := host.syncVXLAN(note); err != nil {
		return changes, err
	}
	if err := host.syncPeers(note); err != nil {
		return changes, err
	}
	return changes, nil
}

type noteFunc func(format string, args ...any)

func (host *Host) syncBridge(note noteFunc) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = BridgeName
	attrs.MTU = host.plan.Config.MTU()
	link, err := host.ensureLinkNoted(&netlink.Bridge{LinkAttrs: attrs}, note)
	if err != nil {
		return err
	}
	if err := host.syncMTU(link, note); err != nil {
		return err
	}
	gateway := netip.PrefixFrom(host.self.Gateway(), host.plan.Config.HostBits)
	return host.syncAddr(link, gateway, note)
}

func (host *Host) syncVXLAN(note noteFunc) error {
	want := host.vxlanLink()
	link, err := host.ensureLinkNoted(want, note)
	if err != nil {
		return err
	}
	if problem := vxlanDiffers(link, want); problem != "" {
		if err := host.handle.LinkDel(link); err != nil {
			return fmt.Errorf("replacing %s (%s): %w", VXLANName, problem, err)
		}
		if link, err = host.ensureLink(host.vxlanLink()); err != nil {
			return err
		}
		note("recreated %s: %s", VXLANName, problem)
	}
	if mac := host.self.TunnelMAC(); link.Attrs().HardwareAddr.String() != mac.String() {
		if err := host.handle.LinkSetHardwareAddr(link, mac); err != nil {
			return fmt.Errorf("setting the MAC address of %s: %w", VXLANName, err)
		}
		note("set the MAC address of %s to %s", VXLANName, mac)
	}
	if err := host.syncMTU(link, note); err != nil {
		return err
	}
	return host.syncAddr(link, netip.PrefixFrom(host.self.TunnelAddr(), 32), note)
}

func (host *Host) vxlanLink() *netlink.Vxlan {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = VXLANName
	attrs.MTU = host.plan.Config.MTU()
	attrs.HardwareAddr = host.self.TunnelMAC()
	return &netlink.Vxlan{
		LinkAttrs: attrs,
		VxlanId:   int(host.plan.Config.VNI),
		SrcAddr:   net.IP(host.self.Underlay.AsSlice()),
		Port:      int(host.plan.Config.Port),
		Learning:  false,
	}
}

// vxlanDiffers says what of an existing VXLAN device differs from the
// plan's ("" if nothing): these settings cannot be changed in place.
func vxlanDiffers(link netlink.Link, want *netlink.Vxlan) string {
	got, ok := link.(*netlink.Vxlan)
	if !ok {
		return ""
	}
	switch {
	case got.VxlanId != want.VxlanId:
		return fmt.Sprintf("VNI %d, want %d", got.VxlanId, want.VxlanId)
	case got.Port != want.Port:
		return fmt.Sprintf("UDP port %d, want %d", got.Port, want.Port)
	case !got.SrcAddr.Equal(want.SrcAddr):
		return fmt.Sprintf("local address %v, want %v", got.SrcAddr, want.SrcAddr)
	case got.Learning:
		return "address learning on, want off"
	}
	return ""
}

func (host *Host) ensureLinkNoted(link netlink.Link, note noteFunc) (netlink.Link, error) {
	name := link.Attrs().Name
	_, err := host.handle.LinkByName(name)
	missing := err != nil
	got, err := host.ensureLink(link)
	if err == nil && missing {
		note("created %s %s", link.Type(), name)
	}
	return got, err
}

func (host *Host) syncMTU(link netlink.Link, note noteFunc) error {
	want := host.plan.Config.MTU()
	if link.Attrs().MTU == want {
		return nil
	}
	if err := host.handle.LinkSetMTU(link, want); err != nil {
		return fmt.Errorf("setting the MTU of %s to %d: %w", link.Attrs().Name, want, err)
	}
	note("set the MTU of %s to %d", link.Attrs().Name, want)
	return nil
}

// syncAddr gives link the address want, removes its other IPv4 addresses
// inside the overlay (a subnet that changed) and brings it up.
func (host *Host) syncAddr(link netlink.Link, want netip.Prefix, note noteFunc) error {
	name := link.Attrs().Name
	addrs, err := host.handle.AddrList(link, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("listing the addresses of %s: %w", name, err)
	}
	present := false
	for _, a := range addrs {
		got, ok := prefixOf(a.IPNet)
		switch {
		case !ok:
		case got == want:
			present = true
		case host.plan.Config.CIDR.Contains(got.Addr()):
			if err := host.handle.AddrDel(link, &a); err != nil {
				return fmt.Errorf("removing the old address %s from %s: %w", got, name, err)
			}
			note("removed the old address %s from %s", got, name)
		}
	}
	if !present {
		if err := host.handle.AddrReplace(link, netlinkAddr(want)); err != nil {
			return fmt.Errorf("adding %s to %s: %w", want, name, err)
		}
		note("added %s to %s", want, name)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := host.handle.LinkSetUp(link); err != nil {
			return fmt.Errorf("bringing %s up: %w", name, err)
		}
		note("brought %s up", name)
	}
	return nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(addr, bits), true
}

// syncPeers adds the route and entries of every peer that lacks them and
// removes those of addresses that are no longer a peer's.
func (host *Host) syncPeers(note noteFunc) error {
	vxlan, err := host.handle.LinkByName(VXLANName)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", VXLANName, err)
	}
	have, err := host.listPeerState(vxlan.Attrs().Index)
	if err != nil {
		return err
	}
	peers := host.plan.Peers(host.index)
	for _, peer := range peers {
		if have.complete(peer) {
			continue
		}
		if err := host.AddPeer(peer); err != nil {
			return fmt.Errorf("peer host %s: %w", peer.Underlay, err)
		}
		note("added the route and entries of peer %s (%s)", peer.Underlay, peer.Subnet)
	}
	return host.removeStale(have, peers, note)
}

// peerState is what a VXLAN device holds: its routes by destination, its
// permanent neighbours by address, its permanent FDB entries by remote.
type peerState struct {
	routes map[netip.Prefix]netlink.Route
	neighs map[netip.Addr]netlink.Neigh
	fdb    map[netip.Addr]netlink.Neigh
}

func (host *Host) listPeerState(index int) (peerState, error) {
	s := peerState{routes: map[netip.Prefix]netlink.Route{}, neighs: map[netip.Addr]netlink.Neigh{}, fdb: map[netip.Addr]netlink.Neigh{}}
	routes, err := host.handle.RouteListFiltered(unix.AF_INET, &netlink.Route{LinkIndex: index, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return s, fmt.Errorf("listing the routes of %s: %w", VXLANName, err)
	}
	for _, r := range routes {
		if dst, ok := prefixOf(r.Dst); ok {
			s.routes[dst] = r
		}
	}
	for family, into := range map[int]map[netip.Addr]netlink.Neigh{unix.AF_INET: s.neighs, unix.AF_BRIDGE: s.fdb} {
		neighs, err := host.handle.NeighList(index, family)
		if err != nil {
			return s, fmt.Errorf("listing the neighbours of %s: %w", VXLANName, err)
		}
		for _, n := range neighs {
			if addr, ok := netip.AddrFromSlice(n.IP.To4()); ok && n.State&netlink.NUD_PERMANENT != 0 {
				into[addr] = n
			}
		}
	}
	return s, nil
}

// complete says whether the device already routes to peer as AddPeer would.
func (s peerState) complete(peer HostPlan) bool {
	r, ok := s.routes[peer.Subnet]
	if !ok || !r.Gw.Equal(net.IP(peer.TunnelAddr().AsSlice())) {
		return false
	}
	n, ok := s.neighs[peer.TunnelAddr()]
	if !ok || n.HardwareAddr.String() != peer.TunnelMAC().String() {
		return false
	}
	f, ok := s.fdb[peer.Underlay]
	return ok && f.HardwareAddr.String() == peer.TunnelMAC().String()
}

func (host *Host) removeStale(have peerState, peers []HostPlan, note noteFunc) error {
	subnets, tunnels, underlays := map[netip.Prefix]bool{}, map[netip.Addr]bool{}, map[netip.Addr]bool{}
	for _, p := range peers {
		subnets[p.Subnet], tunnels[p.TunnelAddr()], underlays[p.Underlay] = true, true, true
	}
	var errs []error
	for dst, r := range have.routes {
		if !subnets[dst] {
			errs = append(errs, host.handle.RouteDel(&r))
			note("removed the route to %s (no longer a peer's subnet)", dst)
		}
	}
	for addr, n := range have.neighs {
		if !tunnels[addr] {
			errs = append(errs, host.handle.NeighDel(&n))
			note("removed the neighbour entry of %s", addr)
		}
	}
	for addr, n := range have.fdb {
		if !underlays[addr] {
			errs = append(errs, host.handle.NeighDel(&n))
			note("removed the forwarding entry of %s", addr)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing the entries of former peers: %w", err)
	}
	return nil
}

// Attached lists the interfaces enslaved to the overlay bridge: the host
// ends of containers' veth pairs. None if there is no bridge.
func Attached(handle *netlink.Handle) ([]string, error) {
	bridge, err := handle.LinkByName(BridgeName)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", BridgeName, err)
	}
	links, err := handle.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	var names []string
	for _, l := range links {
		if l.Attrs().MasterIndex == bridge.Attrs().Index {
			names = append(names, l.Attrs().Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Remove deletes the overlay's VXLAN device and bridge, with every route
// and entry that goes through them, and returns the names it removed.
// Interfaces attached to the bridge are left, detached. Devices that are
// not there are not an error.
func Remove(handle *netlink.Handle) ([]string, error) {
	var removed []string
	for _, name := range []string{VXLANName, BridgeName} {
		link, err := handle.LinkByName(name)
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("looking up %s: %w", name, err)
		}
		if err := handle.LinkDel(link); err != nil {
			return removed, fmt.Errorf("removing %s: %w", name, err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}
