package cni

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/slimnet/slim/overlay"
)

// cmdCheck verifies that the container's network is as ADD left it: its
// address is still allocated to it, the host end is on the bridge and up,
// the container's interface has the address and the overlay route, and the
// router has it registered (if the router runs; its record otherwise).
func cmdCheck(args *skel.CmdArgs) error {
	n, err := load(args.StdinData)
	if err != nil {
		return err
	}
	if err := version.ParsePrevResult(&n.conf.PluginConf); err != nil {
		return configError("CHECK: prevResult: %v", err)
	}
	if n.conf.PrevResult == nil {
		return configError("CHECK needs prevResult, the result of the container's ADD")
	}
	prev, err := current.NewResultFromResult(n.conf.PrevResult)
	if err != nil {
		return configError("CHECK: prevResult: %v", err)
	}
	a := attachmentOf(args)
	addr, err := n.checkAllocation(a, prev)
	if err != nil {
		return err
	}
	if err := n.checkHostEnd(a); err != nil {
		return err
	}
	if err := n.checkContainerEnd(args.Netns, a, prev); err != nil {
		return err
	}
	return n.checkRegistration(a, addr)
}

func notAsAdded(a attachment, format string, args ...any) error {
	return pluginError(ErrNotAsAdded, "container %s (%s): %s", a.id, a.ifname, fmt.Sprintf(format, args...))
}

func (n *network) checkAllocation(a attachment, prev *current.Result) (netip.Addr, error) {
	if want := n.addressesPerAdd(); len(prev.IPs) != want {
		return netip.Addr{}, configError("CHECK: prevResult has %d addresses; slim's ADD gives %d", len(prev.IPs), want)
	}
	addr, _ := netip.AddrFromSlice(prev.IPs[0].Address.IP.To4())
	allocated, err := n.allocations()
	if err != nil {
		return addr, err
	}
	if got, ok := allocated[a]; !ok || got != addr {
		return addr, notAsAdded(a, "address %s is no longer allocated to it (allocated: %v)", addr, got)
	}
	return addr, nil
}

func (n *network) checkHostEnd(a attachment) error {
	name := hostVethName(a)
	link, err := netlink.LinkByName(name)
	if err != nil {
		return notAsAdded(a, "its host interface %s is gone", name)
	}
	bridge, err := netlink.LinkByName(overlay.BridgeName)
	if err != nil || link.Attrs().MasterIndex != bridge.Attrs().Index {
		return notAsAdded(a, "its host interface %s is not attached to %s", name, overlay.BridgeName)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return notAsAdded(a, "its host interface %s is down", name)
	}
	return nil
}

func (n *network) checkContainerEnd(path string, a attachment, prev *current.Result) error {
	netns, err := openNetns(path)
	if err != nil {
		return err
	}
	defer netns.Close()
	return netns.Do(func(ns.NetNS) error {
		link, err := netlink.LinkByName(a.ifname)
		if err != nil {
			return notAsAdded(a, "interface %s is gone from its namespace", a.ifname)
		}
		if link.Attrs().Flags&net.FlagUp == 0 {
			return notAsAdded(a, "interface %s is down", a.ifname)
		}
		if err := ip.ValidateExpectedInterfaceIPs(a.ifname, prev.IPs); err != nil {
			return notAsAdded(a, "interface %s has lost its address %s (%v)", a.ifname, prev.IPs[0].Address.String(), err)
		}
		for _, r := range prev.Routes {
			if err := ip.ValidateExpectedRoute([]*types.Route{r}); err != nil {
				return notAsAdded(a, "its route to %s via %s is gone", r.Dst.String(), r.GW)
			}
		}
		return nil
	})
}

func (n *network) checkRegistration(a attachment, addr netip.Addr) error {
	rec, ok := n.recordOf(a)
	if !ok || rec.Addr != addr {
		return notAsAdded(a, "it is not registered with the slim router (no record in %s)", n.router.Dir)
	}
	snap, err := n.routerSnapshot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "slim: the router is not answering (%v): container %s is served once it runs\n", err, rec.Name)
		return nil
	}
	for _, c := range snap.Containers {
		if c.Name == rec.Name && c.Addr == addr {
			return nil
		}
	}
	return notAsAdded(a, "the slim router does not serve it as %s (%s): its log says why", rec.Name, addr)
}
