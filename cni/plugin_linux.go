package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/slimnet/slim/overlay"
)

// Versions are the CNI spec versions the plugin speaks.
var Versions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

// Main runs the plugin as the CNI runtime asked (CNI_COMMAND and the other
// variables, the configuration on stdin) and returns the process's exit
// code. Errors are printed as CNI error JSON on stdout.
func Main(about string) int {
	funcs := skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, GC: cmdGC, Status: cmdStatus}
	if err := skel.PluginMainFuncsWithError(funcs, Versions, about); err != nil {
		if printErr := err.Print(); printErr != nil {
			fmt.Fprintf(os.Stderr, "slim: writing the error: %v\n", printErr)
		}
		return 1
	}
	return 0
}

func attachmentOf(args *skel.CmdArgs) attachment {
	return attachment{id: args.ContainerID, ifname: args.IfName}
}

// cmdAdd attaches a container: address, veth pair, route, registration.
func cmdAdd(args *skel.CmdArgs) error {
	n, err := load(args.StdinData)
	if err != nil {
		return err
	}
	netns, err := openNetns(args.Netns)
	if err != nil {
		return err
	}
	defer netns.Close()
	a := attachmentOf(args)
	addr, err := n.allocate(a)
	if err != nil {
		return err
	}
	result, err := n.plumb(netns, a, addr)
	if err == nil {
		err = n.register(a, args.Netns, addr)
	}
	if err != nil {
		n.detach(a)
		n.release(a)
		return err
	}
	return types.PrintResult(result, n.conf.CNIVersion)
}

func openNetns(path string) (ns.NetNS, error) {
	netns, err := ns.GetNS(path)
	if err != nil {
		return nil, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("slim: the container's network namespace %q: %v", path, err), "")
	}
	return netns, nil
}

// plumb makes the veth pair and configures the container's end: address,
// route to the overlay through the host's bridge (and their IPv6 twins
// with an IPv6 overlay), lo up. No default route.
func (n *network) plumb(netns ns.NetNS, a attachment, addr netip.Addr) (*current.Result, error) {
	hostIf, contIf, err := n.attach(netns, a)
	if err != nil {
		return nil, err
	}
	gateway := net.IP(n.self.Gateway().AsSlice())
	result := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: hostIf.Name, Mac: hostIf.HardwareAddr.String()},
			{Name: contIf.Name, Mac: contIf.HardwareAddr.String(), Sandbox: netns.Path()},
		},
		IPs: []*current.IPConfig{{
			Interface: current.Int(1),
			Address:   *overlay.IPNet(netip.PrefixFrom(addr, n.self.Subnet.Bits())),
			Gateway:   gateway,
		}},
		Routes: []*types.Route{{Dst: *overlay.IPNet(n.plan.Config.CIDR), GW: gateway}},
	}
	n.ipv6Result(result, addr)
	err = netns.Do(func(ns.NetNS) error {
		if err := n.skipDAD(a.ifname); err != nil {
			return err
		}
		if err := ipam.ConfigureIface(a.ifname, result); err != nil {
			return err
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("configuring %s in the container: %w", a.ifname, err)
	}
	return result, nil
}

// cmdDel detaches a container. It succeeds when there is nothing (left) to
// undo: a second DEL, one with no namespace, one after a failed ADD.
//
// Without the router's configuration (slim was uninstalled first, say),
// it still removes the interface and the address, so that the runtime's
// DEL does not fail forever; the container's record at the router, if
// any, stays ('slim container del' or GC with the configuration removes
// it).
func cmdDel(args *skel.CmdArgs) error {
	n, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	a := attachmentOf(args)
	if err := n.loadRouter(); err != nil {
		fmt.Fprintf(os.Stderr, "%v; removing container %s's interface and address only\n", err, a.id)
		return errors.Join(n.detach(a), n.release(a))
	}
	return errors.Join(n.unregister(a), n.detach(a), n.release(a))
}
