package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router"
)

// hostVethPrefix starts the name of every host end the plugin makes:
// "slim" and 8 hex digits of a hash of the attachment, so that DEL and GC
// find it without the container's namespace.
const hostVethPrefix = "slim"

func hostVethName(a attachment) string {
	sum := sha256.Sum256([]byte(a.id + "/" + a.ifname))
	return hostVethPrefix + hex.EncodeToString(sum[:4])
}

// isHostVethName says whether name is one the plugin makes.
func isHostVethName(name string) bool {
	if len(name) != len(hostVethPrefix)+8 || name[:len(hostVethPrefix)] != hostVethPrefix {
		return false
	}
	_, err := hex.DecodeString(name[len(hostVethPrefix):])
	return err == nil
}

// ensureBridge makes sure the host has its overlay (the router keeps it;
// after a reboot the plugin may run first). It runs the router's own
// set-up, router.EnsureOverlay, only if the bridge is missing.
func (n *network) ensureBridge() (netlink.Link, error) {
	if bridge, err := netlink.LinkByName(overlay.BridgeName); err == nil {
		return bridge, nil
	}
	if _, err := router.EnsureOverlay(n.router); err != nil {
		return nil, pluginError(types.ErrInternal, "setting up this host's overlay (the router was not running): %v", err)
	}
	return netlink.LinkByName(overlay.BridgeName)
}

// attach makes the veth pair: ifname in the container, the host end on the
// bridge, both up, with the overlay's MTU.
func (n *network) attach(netns ns.NetNS, a attachment) (host, cont net.Interface, err error) {
	bridge, err := n.ensureBridge()
	if err != nil {
		return host, cont, err
	}
	hostName := hostVethName(a)
	if _, err := netlink.LinkByName(hostName); err == nil {
		return host, cont, pluginError(types.ErrInternal, "the host already has interface %s of container %s (%s): the runtime must DEL the container before adding it again", hostName, a.id, a.ifname)
	}
	err = netns.Do(func(hostNS ns.NetNS) error {
		if _, err := netlink.LinkByName(a.ifname); err == nil {
			return pluginError(types.ErrInternal, "container %s already has an interface %s", a.id, a.ifname)
		}
		host, cont, err = ip.SetupVethWithName(a.ifname, hostName, n.plan.Config.MTU(), "", hostNS)
		return err
	})
	if err != nil {
		return host, cont, err
	}
	link, err := netlink.LinkByName(hostName)
	if err == nil {
		err = netlink.LinkSetMaster(link, bridge)
	}
	if err != nil {
		n.detach(a)
		return host, cont, fmt.Errorf("attaching %s to %s: %w", hostName, overlay.BridgeName, err)
	}
	return host, cont, nil
}

// detach deletes the attachment's veth pair by its host end; a pair that
// is gone (with its namespace, or deleted before) is fine.
func (n *network) detach(a attachment) error {
	link, err := netlink.LinkByName(hostVethName(a))
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err == nil {
		err = netlink.LinkDel(link)
	}
	if err != nil && !errors.As(err, &notFound) {
		return fmt.Errorf("deleting %s: %w", hostVethName(a), err)
	}
	return nil
}
