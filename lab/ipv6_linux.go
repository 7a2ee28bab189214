package lab

import (
	"fmt"
	"net/netip"

	"github.com/slimnet/slim/overlay"
)

// enableOverlayIPv6 turns IPv6 on in a host namespace for its overlay
// devices only: the wire interface (eth0, already there) keeps it off, so
// the wire carries IPv4 alone, and IPv6 forwarding goes on.
func enableOverlayIPv6(namespace string) error {
	for _, s := range [][2]string{
		{"net.ipv6.conf.all.disable_ipv6", "0"},                   // propagates to eth0 and lo ...
		{"net.ipv6.conf." + hostInterface + ".disable_ipv6", "1"}, // ... so eth0 goes off again
		{"net.ipv6.conf.default.disable_ipv6", "0"},               // slim0 and slim-vx, made next
		{"net.ipv6.conf.default.accept_dad", "0"},                 // their link-local addresses work at once
		{"net.ipv6.conf.all.forwarding", "1"},
	} {
		if err := writeSysctl(namespace, s[0], s[1]); err != nil {
			return err
		}
	}
	return nil
}

// enableContainerIPv6 turns IPv6 on in a container namespace (its eth0 is
// made next and takes the default).
func enableContainerIPv6(namespace string) error {
	for _, key := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6", "net.ipv6.conf.default.accept_dad"} {
		if err := writeSysctl(namespace, key, "0"); err != nil {
			return err
		}
	}
	return nil
}

// IPv6Of is a container's IPv6 overlay address in a lab built with
// Spec.IPv6.
func (l *Lab) IPv6Of(node string) (netip.Addr, error) {
	if !l.IPv6.IsValid() {
		return netip.Addr{}, fmt.Errorf("lab %s has no IPv6 overlay", l.Name)
	}
	n, err := l.Node(node)
	if err != nil {
		return netip.Addr{}, err
	}
	if !OverlayCIDR.Contains(n.Addr) {
		return netip.Addr{}, fmt.Errorf("%s is a host: only containers have overlay addresses", node)
	}
	return overlay.Config{IPv6: l.IPv6}.IPv6Of(n.Addr), nil
}
