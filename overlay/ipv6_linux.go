package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// IPv6 on the overlay (Config.IPv6): every IPv4 address the overlay gives
// (gateway, tunnel, containers) has its IPv6 twin (Config.IPv6Of), and
// every IPv4 route its IPv6 one. VXLAN carries IPv6 frames as it carries
// IPv4 ones: the peers' static IPv6 neighbour entries point at the same
// tunnel MACs. Addresses are added without duplicate address detection
// (the plan makes them unique), so they work at once.

// sync6 gives the bridge and the VXLAN device their IPv6 addresses and
// routes every peer's IPv6 subnet; with no IPv6 prefix it does nothing.
func (host *Host) sync6(note noteFunc) error {
	cfg := host.plan.Config
	if !cfg.HasIPv6() {
		return nil
	}
	bridge, err := host.handle.LinkByName(BridgeName)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", BridgeName, err)
	}
	if err := host.syncAddr6(bridge, netip.PrefixFrom(cfg.IPv6Of(host.self.Gateway()), IPv6PrefixBits+cfg.HostBits), note); err != nil {
		return err
	}
	vxlan, err := host.handle.LinkByName(VXLANName)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", VXLANName, err)
	}
	if err := host.syncAddr6(vxlan, netip.PrefixFrom(cfg.IPv6Of(host.self.TunnelAddr()), 128), note); err != nil {
		return err
	}
	return host.syncPeers6(vxlan.Attrs().Index, note)
}

// syncAddr6 gives link the IPv6 address want and removes its other
// addresses inside the overlay's IPv6 prefix.
func (host *Host) syncAddr6(link netlink.Link, want netip.Prefix, note noteFunc) error {
	name := link.Attrs().Name
	addrs, err := host.handle.AddrList(link, unix.AF_INET6)
	if err != nil {
		return fmt.Errorf("listing the IPv6 addresses of %s: %w", name, err)
	}
	present := false
	for _, a := range addrs {
		got, ok := prefix6Of(a.IPNet)
		switch {
		case !ok:
		case got == want:
			present = true
		case host.plan.Config.IPv6.Contains(got.Addr()):
			if err := host.handle.AddrDel(link, &a); err != nil {
				return fmt.Errorf("removing the old address %s from %s: %w", got, name, err)
			}
			note("removed the old address %s from %s", got, name)
		}
	}
	if present {
		return nil
	}
	if err := host.handle.AddrReplace(link, netlinkAddr6(want)); err != nil {
		return fmt.Errorf("adding %s to %s: %w", want, name, err)
	}
	note("added %s to %s", want, name)
	return nil
}

// syncPeers6 routes each peer's IPv6 subnet through its tunnel address
// (a permanent neighbour with the peer's tunnel MAC) and removes the
// IPv6 routes and neighbours of former peers.
func (host *Host) syncPeers6(index int, note noteFunc) error {
	cfg := host.plan.Config
	routes, err := host.handle.RouteListFiltered(unix.AF_INET6, &netlink.Route{LinkIndex: index, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("listing the IPv6 routes of %s: %w", VXLANName, err)
	}
	neighs, err := host.handle.NeighList(index, unix.AF_INET6)
	if err != nil {
		return fmt.Errorf("listing the IPv6 neighbours of %s: %w", VXLANName, err)
	}
	haveRoute := map[netip.Prefix]netlink.Route{}
	for _, r := range routes {
		if dst, ok := prefix6Of(r.Dst); ok && cfg.IPv6.Contains(dst.Addr()) {
			haveRoute[dst] = r
		}
	}
	haveNeigh := map[netip.Addr]netlink.Neigh{}
	for _, n := range neighs {
		if a, ok := netip.AddrFromSlice(n.IP); ok && cfg.IPv6.Contains(a) && n.State&netlink.NUD_PERMANENT != 0 {
			haveNeigh[a] = n
		}
	}
	var errs []error
	for _, peer := range host.plan.Peers(host.index) {
		subnet, tunnel := cfg.IPv6Subnet(peer.Subnet), cfg.IPv6Of(peer.TunnelAddr())
		n, okN := haveNeigh[tunnel]
		r, okR := haveRoute[subnet]
		delete(haveNeigh, tunnel)
		delete(haveRoute, subnet)
		if okN && okR && n.HardwareAddr.String() == peer.TunnelMAC().String() && r.Gw.Equal(net.IP(tunnel.AsSlice())) {
			continue
		}
		if err := host.addPeer6(index, peer); err != nil {
			return fmt.Errorf("peer host %s: %w", peer.Underlay, err)
		}
		note("added the IPv6 route and neighbour of peer %s (%s)", peer.Underlay, subnet)
	}
	for dst, r := range haveRoute {
		errs = append(errs, host.handle.RouteDel(&r))
		note("removed the route to %s (no longer a peer's subnet)", dst)
	}
	for a, n := range haveNeigh {
		errs = append(errs, host.handle.NeighDel(&n))
		note("removed the neighbour entry of %s", a)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing the IPv6 entries of former peers: %w", err)
	}
	return nil
}

// addPeer6 is AddPeer's IPv6 half (the FDB entry is shared).
func (host *Host) addPeer6(index int, peer HostPlan) error {
	cfg := host.plan.Config
	tunnel := cfg.IPv6Of(peer.TunnelAddr())
	neighbour := &netlink.Neigh{
		LinkIndex:    index,
		Family:       unix.AF_INET6,
		State:        netlink.NUD_PERMANENT,
		IP:           net.IP(tunnel.AsSlice()),
		HardwareAddr: peer.TunnelMAC(),
	}
	if err := host.handle.NeighSet(neighbour); err != nil {
		return fmt.Errorf("adding neighbour entry for %s: %w", tunnel, err)
	}
	route := &netlink.Route{
		LinkIndex: index,
		Dst:       IPNet(cfg.IPv6Subnet(peer.Subnet)),
		Gw:        net.IP(tunnel.AsSlice()),
		Flags:     int(netlink.FLAG_ONLINK),
	}
	if err := host.handle.RouteReplace(route); err != nil {
		return fmt.Errorf("adding route to %s: %w", route.Dst, err)
	}
	return nil
}

// configureContainer6 gives a container's eth0 (link, through handle)
// its IPv6 overlay address and routes the overlay's IPv6 prefix through
// the gateway's IPv6 address; no default route.
func (host *Host) configureContainer6(handle *netlink.Handle, link netlink.Link, v4 netip.Addr) error {
	cfg := host.plan.Config
	if !cfg.HasIPv6() {
		return nil
	}
	addr := netip.PrefixFrom(cfg.IPv6Of(v4), IPv6PrefixBits+cfg.HostBits)
	if err := handle.AddrReplace(link, netlinkAddr6(addr)); err != nil {
		return fmt.Errorf("adding %s to container (is IPv6 disabled in its namespace?): %w", addr, err)
	}
	gateway := cfg.IPv6Of(host.self.Gateway())
	route := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       IPNet(cfg.IPv6),
		Gw:        net.IP(gateway.AsSlice()),
	}
	if err := handle.RouteReplace(route); err != nil {
		return fmt.Errorf("routing %s through %s in container: %w", cfg.IPv6, gateway, err)
	}
	return nil
}

// netlinkAddr6 is an IPv6 address without duplicate address detection.
func netlinkAddr6(p netip.Prefix) *netlink.Addr {
	return &netlink.Addr{IPNet: IPNet(p), Flags: unix.IFA_F_NODAD}
}

func prefix6Of(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil || n.IP.To4() != nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(addr, bits), true
}

// IPv6Forwarding is the sysctl a host with IPv6 containers needs at 1
// (besides IPv4's ip_forward), relative to /proc/sys.
const IPv6Forwarding = "net/ipv6/conf/all/forwarding"

// EnableIPv6Forwarding sets IPv6Forwarding to 1 in the calling thread's
// network namespace, under procSys (normally /proc/sys).
func EnableIPv6Forwarding(procSys string) error {
	path := filepath.Join(procSys, IPv6Forwarding)
	if b, err := os.ReadFile(path); err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enabling IPv6 forwarding: %w", err)
	}
	return nil
}
