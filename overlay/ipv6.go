package overlay

import (
	"fmt"
	"net/netip"
)

// IPv6PrefixBits is the length of the overlay's IPv6 prefix: the 32 bits
// after it are the container's IPv4 overlay address (docs/overlay.md).
const IPv6PrefixBits = 96

// ParseIPv6Prefix parses the overlay's IPv6 prefix, a /96 such as
// 2001:2::/96, naming what it is in the error.
func ParseIPv6Prefix(what, text string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(text)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s %q is not a prefix such as 2001:2::/96", what, text)
	}
	if err := checkIPv6Prefix(p); err != nil {
		return netip.Prefix{}, fmt.Errorf("%s %q: %v", what, text, err)
	}
	return p, nil
}

// checkIPv6Prefix says what is wrong with an IPv6 overlay prefix.
func checkIPv6Prefix(p netip.Prefix) error {
	switch {
	case !p.Addr().Is6() || p.Addr().Is4In6():
		return fmt.Errorf("not an IPv6 prefix")
	case p.Bits() != IPv6PrefixBits:
		return fmt.Errorf("must be a /%d: the last 32 bits are each container's IPv4 overlay address", IPv6PrefixBits)
	case p.Masked() != p:
		return fmt.Errorf("has host bits set; did you mean %s?", p.Masked())
	case p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() || p.Addr().IsLoopback():
		return fmt.Errorf("is not a unicast global or unique local prefix")
	}
	return nil
}

// HasIPv6 says whether containers get IPv6 overlay addresses.
func (c Config) HasIPv6() bool { return c.IPv6.IsValid() }

// IPv6Of is the IPv6 overlay address that goes with the IPv4 overlay
// address v4: the IPv6 prefix with v4 as its last 32 bits.
func (c Config) IPv6Of(v4 netip.Addr) netip.Addr {
	b := c.IPv6.Addr().As16()
	a := v4.As4()
	copy(b[12:], a[:])
	return netip.AddrFrom16(b)
}

// IPv4Of is the IPv4 overlay address that goes with an IPv6 overlay
// address; false if v6 is not in the overlay's IPv6 prefix.
func (c Config) IPv4Of(v6 netip.Addr) (netip.Addr, bool) {
	if !c.HasIPv6() || !v6.Is6() || v6.Is4In6() || !c.IPv6.Contains(v6) {
		return netip.Addr{}, false
	}
	b := v6.As16()
	return netip.AddrFrom4([4]byte(b[12:])), true
}

// IPv6Subnet is the IPv6 prefix that goes with an IPv4 overlay prefix
// (a host's /24 gives a /120).
func (c Config) IPv6Subnet(v4 netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(c.IPv6Of(v4.Addr()), IPv6PrefixBits+v4.Bits())
}
