package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

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
