package lab

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// overlayRoutesWithin bounds the wait for routers to route to each other.
const overlayRoutesWithin = 30 * time.Second

// WaitForOverlayRoutes waits until every host routes to every other
// host's subnet: in a lab on etcd, the routers program those routes from
// the members they learn.
func (l *Lab) WaitForOverlayRoutes() error {
	deadline := time.Now().Add(overlayRoutesWithin)
	for _, h := range l.Hosts {
		for {
			missing, err := l.missingRoutes(h)
			if err == nil && len(missing) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("host %s has no overlay route to %v after %v (%v)", h.Name, missing, overlayRoutesWithin, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// missingRoutes lists the other hosts' subnets h has no route to.
func (l *Lab) missingRoutes(h Host) ([]netip.Prefix, error) {
	handle, err := handleFor(h.Netns)
	if err != nil {
		return nil, err
	}
	defer handle.Close()
	routes, err := handle.RouteList(nil, unix.AF_INET)
	if err != nil {
		return nil, err
	}
	have := map[netip.Prefix]bool{}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if p, ok := prefixOf(r); ok {
			have[p] = true
		}
	}
	var missing []netip.Prefix
	for _, other := range l.Hosts {
		if other.Name != h.Name && !have[other.Subnet] {
			missing = append(missing, other.Subnet)
		}
	}
	return missing, nil
}

func prefixOf(r netlink.Route) (netip.Prefix, bool) {
	addr, ok := netip.AddrFromSlice(r.Dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), bits), true
}
