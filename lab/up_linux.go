package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/slimnet/slim/overlay"
)

// wireBridge is the bridge in the wire namespace that joins the hosts.
const wireBridge = "wire"

// hostInterface is a host's interface on the wire.
const hostInterface = "eth0"

// Up builds the lab described by spec. It refuses to build over a lab that
// is up or over the leftovers of one, and if any step fails it removes
// everything it made before returning the error.
func Up(spec Spec) (*Lab, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := checkAbsent(spec.Name); err != nil {
		return nil, err
	}
	l, err := build(spec)
	if err != nil {
		if downErr := Down(spec.Name); downErr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", downErr))
		}
		return nil, err
	}
	return l, nil
}

func checkAbsent(name string) error {
	if _, err := os.Stat(statePath(name)); err == nil {
		return fmt.Errorf("lab %s is already up (slim lab status --name %s; slim lab down --name %s)", name, name, name)
	}
	left, err := namespacesWithPrefix(name + "-")
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return fmt.Errorf("leftovers of lab %s exist (%s): run slim lab down --name %s first", name, strings.Join(left, ", "), name)
	}
	return nil
}

func build(spec Spec) (*Lab, error) {
	plan, err := overlayPlan(spec.Hosts, spec.IPv6)
	if err != nil {
		return nil, err
	}
	l := &Lab{Name: spec.Name, Store: spec.Store, IPv6: plan.Config.IPv6}
	if err := newNamespace(wireNamespace(spec.Name), false); err != nil {
		return nil, err
	}
	wire, err := buildWire(spec.Name)
	if err != nil {
		return nil, err
	}
	defer wire.Close()
	for i := 1; i <= spec.Hosts; i++ {
		host, err := buildHost(spec, plan, wire, i)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", hostName(i), err)
		}
		l.Hosts = append(l.Hosts, host)
	}
	if spec.Store == StoreEtcd {
		if err := l.buildEtcd(wire); err != nil {
			return nil, fmt.Errorf("etcd: %w", err)
		}
	}
	return l, l.save()
}

// newNamespace creates a namespace with IPv6 off (no router solicitations
// or duplicate address detection crossing the overlay) and, for hosts and
// containers, settings for many short connections: TIME_WAIT reuse and a
// wide ephemeral port range.
func newNamespace(name string, endpoint bool) error {
	if err := createNamespace(name); err != nil {
		return err
	}
	settings := [][2]string{
		{"net.ipv6.conf.all.disable_ipv6", "1"},
		{"net.ipv6.conf.default.disable_ipv6", "1"},
	}
	if endpoint {
		settings = append(settings,
			[2]string{"net.ipv4.tcp_tw_reuse", "1"},
			[2]string{"net.ipv4.ip_local_port_range", "10000 65000"})
	}
	for _, s := range settings {
		if err := writeSysctl(name, s[0], s[1]); err != nil {
			return err
		}
	}
	return nil
}

// buildWire creates the bridge that joins the hosts, returning a netlink
// handle in the wire namespace.
func buildWire(lab string) (*netlink.Handle, error) {
	handle, err := handleFor(wireNamespace(lab))
	if err != nil {
		return nil, err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = wireBridge
	bridge := &netlink.Bridge{LinkAttrs: attrs}
	if err := handle.LinkAdd(bridge); err != nil {
		handle.Close()
		return nil, fmt.Errorf("creating wire bridge: %w", err)
	}
	if err := setUp(handle, wireBridge, "lo"); err != nil {
		handle.Close()
		return nil, err
	}
	return handle, nil
}

// buildHost creates host i: its namespace, its link to the wire, its overlay
// and its containers.
func buildHost(spec Spec, plan overlay.Plan, wire *netlink.Handle, i int) (Host, error) {
	host := Host{
		Name:   hostName(i),
		Netns:  namespaceOf(spec.Name, hostName(i)),
		Wire:   wireAddr(i),
		Subnet: plan.Hosts[i-1].Subnet,
	}
	if err := newNamespace(host.Netns, true); err != nil {
		return host, err
	}
	if err := writeSysctl(host.Netns, "net.ipv4.ip_forward", "1"); err != nil {
		return host, err
	}
	handle, err := handleFor(host.Netns)
	if err != nil {
		return host, err
	}
	defer handle.Close()
	if err := plugIntoWire(wire, handle, host); err != nil {
		return host, err
	}
	if spec.IPv6 {
		if err := enableOverlayIPv6(host.Netns); err != nil {
			return host, err
		}
	}
	// The same function the router runs at start (router.EnsureOverlay).
	hostPlan, self := plan, i-1
	if spec.Store == StoreEtcd { // the routers add the peers they learn from etcd
		hostPlan, self = overlay.Plan{Config: plan.Config, Hosts: plan.Hosts[i-1 : i]}, 0
	}
	overlayHost, _, err := overlay.Ensure(handle, hostPlan, self)
	if err != nil {
		return host, err
	}
	ipam := overlay.NewAllocator(plan.Hosts[i-1])
	for j := 1; j <= spec.Containers; j++ {
		c, err := buildContainer(spec, overlayHost, ipam, i, j)
		if err != nil {
			return host, fmt.Errorf("container %s: %w", containerName(i, j), err)
		}
		host.Containers = append(host.Containers, c)
	}
	return host, nil
}

// plugIntoWire links the host to the wire bridge with a veth pair: hI in the
// wire namespace, eth0 in the host.
func plugIntoWire(wire, hostHandle *netlink.Handle, host Host) error {
	ns, err := netns.GetFromName(host.Netns)
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", host.Netns, err)
	}
	defer ns.Close()
	bridge, err := wire.LinkByName(wireBridge)
	if err != nil {
		return fmt.Errorf("looking up wire bridge: %w", err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = host.Name
	attrs.MasterIndex = bridge.Attrs().Index
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: hostInterface, PeerNamespace: netlink.NsFd(ns)}
	if err := wire.LinkAdd(veth); err != nil {
		return fmt.Errorf("creating wire veth %s: %w", host.Name, err)
	}
	if err := setUp(wire, host.Name); err != nil {
		return err
	}
	link, err := hostHandle.LinkByName(hostInterface)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", hostInterface, err)
	}
	if err := hostHandle.AddrAdd(link, &netlink.Addr{IPNet: overlay.IPNet(host.Wire)}); err != nil {
		return fmt.Errorf("adding %s to %s: %w", host.Wire, hostInterface, err)
	}
	return setUp(hostHandle, "lo", hostInterface)
}

func buildContainer(spec Spec, host *overlay.Host, ipam *overlay.Allocator, i, j int) (Container, error) {
	c := Container{Name: containerName(i, j), Netns: namespaceOf(spec.Name, containerName(i, j))}
	addr, err := ipam.Allocate()
	if err != nil {
		return c, err
	}
	c.Addr = netip.PrefixFrom(addr, 24)
	if err := newNamespace(c.Netns, true); err != nil {
		return c, err
	}
	if spec.IPv6 {
		if err := enableContainerIPv6(c.Netns); err != nil {
			return c, err
		}
	}
	ns, err := netns.GetFromName(c.Netns)
	if err != nil {
		return c, fmt.Errorf("opening namespace %s: %w", c.Netns, err)
	}
	defer ns.Close()
	return c, host.Attach(overlay.Container{HostSide: fmt.Sprintf("c%d", j), Namespace: ns, Addr: addr})
}

func handleFor(namespace string) (*netlink.Handle, error) {
	ns, err := netns.GetFromName(namespace)
	if err != nil {
		return nil, fmt.Errorf("opening namespace %s: %w", namespace, err)
	}
	defer ns.Close()
	handle, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("opening netlink in %s: %w", namespace, err)
	}
	return handle, nil
}

func setUp(handle *netlink.Handle, names ...string) error {
	for _, name := range names {
		link, err := handle.LinkByName(name)
		if err != nil {
			return fmt.Errorf("looking up %s: %w", name, err)
		}
		if err := handle.LinkSetUp(link); err != nil {
			return fmt.Errorf("bringing %s up: %w", name, err)
		}
	}
	return nil
}
