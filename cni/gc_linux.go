package cni

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/vishvananda/netlink"

	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/registration"
)

// cmdGC removes what belongs to attachments that are not in the runtime's
// list of valid ones: their addresses, their records at the router (and
// the router's registration, which holds their namespaces), and host
// interfaces on the bridge that no attachment owns. It goes on past errors
// and reports them all.
func cmdGC(args *skel.CmdArgs) error {
	n, err := load(args.StdinData)
	if err != nil {
		return err
	}
	valid := map[attachment]bool{}
	for _, v := range n.conf.ValidAttachments {
		valid[attachment{id: v.ContainerID, ifname: v.IfName}] = true
	}
	allocated, err := n.allocations()
	if err != nil {
		return err
	}
	var errs []error
	for a := range allocated {
		if !valid[a] {
			errs = append(errs, n.unregister(a), n.detach(a), n.release(a))
		}
	}
	records, _ := registration.List(n.router.Dir)
	for _, rec := range records {
		if a := (attachment{id: rec.ContainerID, ifname: rec.IfName}); rec.ContainerID != "" && !valid[a] {
			errs = append(errs, n.unregister(a))
		}
	}
	errs = append(errs, n.removeStrayVeths(valid))
	if err := errors.Join(errs...); err != nil {
		return pluginError(0, "GC: %v", err)
	}
	return nil
}

// removeStrayVeths deletes host interfaces on the bridge that carry the
// plugin's names but belong to no valid attachment.
func (n *network) removeStrayVeths(valid map[attachment]bool) error {
	bridge, err := netlink.LinkByName(overlay.BridgeName)
	if err != nil {
		return nil // no bridge, nothing on it
	}
	owned := map[string]bool{}
	for a := range valid {
		owned[hostVethName(a)] = true
	}
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		name := l.Attrs().Name
		if l.Attrs().MasterIndex == bridge.Attrs().Index && isHostVethName(name) && !owned[name] {
			if err := netlink.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("deleting %s: %w", name, err))
			}
		}
	}
	return errors.Join(errs...)
}
