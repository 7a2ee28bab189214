package overlay

import (
	"fmt"
	"net"
	"net/netip"

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
	if err := host.sync6(note); err != nil {
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
