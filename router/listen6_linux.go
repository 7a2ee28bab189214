package router

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/directory"
)

// appListenerBind is the IPv4 overlay address an app's listener accepts
// on (0.0.0.0 for all) and the directory flags that say which clients it
// takes. Without an IPv6 overlay it is appListenerAddr, flags 0. With
// one, an AF_INET6 listener on :: takes IPv6 clients too (FlagIPv6), and
// one that is IPV6_V6ONLY or bound to the container's IPv6 overlay
// address takes only them (FlagIPv6|FlagNoIPv4).
func (r *Router) appListenerBind(fd int, c *container) (netip.AddrPort, uint16, error) {
	if !r.plan.Config.HasIPv6() || r.mode.isSecure() { // secure mode: IPv6 stays on the overlay
		bound, err := appListenerAddr(fd)
		return bound, 0, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	in6, ok := sa.(*unix.SockaddrInet6)
	if !ok {
		bound, err := localAddr(fd)
		return bound, 0, err
	}
	ip, port := netip.AddrFrom16(in6.Addr), uint16(in6.Port)
	switch {
	case ip.Is4In6():
		return netip.AddrPortFrom(ip.Unmap(), port), 0, nil
	case ip.IsUnspecified():
		v6only, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		if err != nil {
			return netip.AddrPort{}, 0, err
		}
		flags := directory.FlagIPv6
		if v6only != 0 {
			flags |= directory.FlagNoIPv4
		}
		return netip.AddrPortFrom(netip.IPv4Unspecified(), port), flags, nil
	case ip == r.plan.Config.IPv6Of(c.Addr):
		return netip.AddrPortFrom(c.Addr, port), directory.FlagIPv6 | directory.FlagNoIPv4, nil
	}
	return netip.AddrPort{}, 0, fmt.Errorf("bound to the IPv6 address %s, not the container's IPv6 overlay address %s", ip, r.plan.Config.IPv6Of(c.Addr))
}
