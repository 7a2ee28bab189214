package lab

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/overlay"
)

// EnsureRouted gives every host of the lab a routed container attached by
// a (NAME-hI-veth or NAME-hI-netkit, at 198.18.(128+I).2 or .3), unless it
// has one, and routes every host's routed subnet over the wire to that
// host: no bridge, no tunnel. It returns the containers, host by host. The
// containers are not in the lab's state: Down removes them with the other
// namespaces of the lab. Without netkit in the kernel it returns an error
// wrapping ErrNoNetkit and leaves nothing behind.
func (l *Lab) EnsureRouted(a Attachment) ([]Node, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	var nodes []Node
	for i, h := range l.Hosts {
		node := Node{Name: routedName(h.Name, a), Netns: namespaceOf(l.Name, routedName(h.Name, a)), Addr: routedAddr(i+1, a)}
		if _, err := namespaceID(node.Netns); err != nil {
			if err := buildRouted(h, node, a); err != nil {
				return nil, errors.Join(fmt.Errorf("routed container %s: %w", node.Name, err), deleteNamespace(node.Netns))
			}
		}
		nodes = append(nodes, node)
	}
	for i, h := range l.Hosts {
		if err := l.routeSubnets(h, i+1); err != nil {
			return nil, err
		}
	}
	return nodes, nil
}

// buildRouted makes a routed container: its namespace, its link to the
// host, its /32 address with a route to the lab's wire space through that
// link, and the host's route to it.
func buildRouted(h Host, node Node, a Attachment) error {
	if err := newNamespace(node.Netns, true); err != nil {
		return err
	}
	ns, err := netns.GetFromName(node.Netns)
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", node.Netns, err)
	}
	defer ns.Close()
	handle, err := handleFor(h.Netns)
	if err != nil {
		return err
	}
	defer handle.Close()
	hostSide, err := addRoutedLink(handle, a, ns)
	if err != nil {
		return err
	}
	if a == AttachVeth {
		// The container resolves every lab address on its link; the host
		// answers for those it routes elsewhere.
		if err := writeSysctl(h.Netns, "net.ipv4.conf."+hostSide.Attrs().Name+".proxy_arp", "1"); err != nil {
			return err
		}
	}
	if err := handle.LinkSetUp(hostSide); err != nil {
		return fmt.Errorf("bringing %s up: %w", hostSide.Attrs().Name, err)
	}
	if err := configureRouted(ns, node); err != nil {
		return err
	}
	route := &netlink.Route{LinkIndex: hostSide.Attrs().Index, Dst: hostRoute(node), Scope: netlink.SCOPE_LINK}
	if err := handle.RouteReplace(route); err != nil {
		return fmt.Errorf("routing %s to %s in %s: %w", node.Addr, hostSide.Attrs().Name, h.Name, err)
	}
	return nil
}

// addRoutedLink creates the link pair, its container end eth0 in ns, and
// returns the host's end.
func addRoutedLink(handle *netlink.Handle, a Attachment, ns netns.NsHandle) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = hostSideName(a)
	var link netlink.Link
	switch a {
	case AttachVeth:
		link = &netlink.Veth{LinkAttrs: attrs, PeerName: overlay.ContainerInterface, PeerNamespace: netlink.NsFd(ns)}
	case AttachNetkit:
		nk := &netlink.Netkit{LinkAttrs: attrs, Mode: netlink.NETKIT_MODE_L3,
			Policy: netlink.NETKIT_POLICY_FORWARD, PeerPolicy: netlink.NETKIT_POLICY_FORWARD}
		peer := netlink.NewLinkAttrs()
		peer.Name = overlay.ContainerInterface
		peer.Namespace = netlink.NsFd(ns)
		nk.SetPeerAttrs(&peer)
		link = nk
	}
	if err := handle.LinkAdd(link); err != nil {
		if a == AttachNetkit && errors.Is(err, unix.EOPNOTSUPP) {
			return nil, fmt.Errorf("%w: creating %s: %v", ErrNoNetkit, attrs.Name, err)
		}
		return nil, fmt.Errorf("creating %s %s: %w", a, attrs.Name, err)
	}
	return handle.LinkByName(attrs.Name)
}

// configureRouted gives the container its address and routes the lab's
// wire space (the hosts and every routed subnet) out of eth0.
func configureRouted(ns netns.NsHandle, node Node) error {
	handle, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("opening netlink in %s: %w", node.Netns, err)
	}
	defer handle.Close()
	if err := setUp(handle, "lo", overlay.ContainerInterface); err != nil {
		return err
	}
	link, err := handle.LinkByName(overlay.ContainerInterface)
	if err != nil {
		return err
	}
	if err := handle.AddrAdd(link, &netlink.Addr{IPNet: hostRoute(node)}); err != nil {
		return fmt.Errorf("adding %s to %s: %w", node.Addr, node.Name, err)
	}
	wireSpace := &net.IPNet{IP: net.IPv4(198, 18, 0, 0), Mask: net.CIDRMask(16, 32)}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: wireSpace, Scope: netlink.SCOPE_LINK}
	if err := handle.RouteReplace(route); err != nil {
		return fmt.Errorf("routing %s out of %s's %s: %w", wireSpace, node.Name, overlay.ContainerInterface, err)
	}
	return nil
}

// routeSubnets routes every other host's routed subnet via that host's
// wire address, on host h (number i).
func (l *Lab) routeSubnets(h Host, i int) error {
	handle, err := handleFor(h.Netns)
	if err != nil {
		return err
	}
	defer handle.Close()
	wire, err := handle.LinkByName(hostInterface)
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	for j, other := range l.Hosts {
		if j+1 == i {
			continue
		}
		route := &netlink.Route{LinkIndex: wire.Attrs().Index, Dst: overlay.IPNet(routedSubnet(j + 1)),
			Gw: net.IP(other.Wire.Addr().AsSlice())}
		if err := handle.RouteReplace(route); err != nil {
			return fmt.Errorf("routing %s via %s on %s: %w", routedSubnet(j+1), other.Wire.Addr(), h.Name, err)
		}
	}
	return nil
}

func hostRoute(node Node) *net.IPNet {
	return &net.IPNet{IP: net.IP(node.Addr.AsSlice()), Mask: net.CIDRMask(32, 32)}
}
