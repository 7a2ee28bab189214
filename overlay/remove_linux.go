package overlay

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"
)

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
