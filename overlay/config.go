package overlay

import (
	"errors"
	"fmt"
	"net/netip"
)

// Defaults used when a Config leaves a field zero.
const (
	DefaultVNI         = 42
	DefaultPort        = 4789
	DefaultHostBits    = 24
	DefaultUnderlayMTU = 1500
	// vxlanOverhead is outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
	vxlanOverhead = 50
)

// Config is the cluster-wide overlay configuration, the same on every host.
type Config struct {
	// CIDR is the overlay address space, split into one subnet per host.
	CIDR netip.Prefix
	// HostBits is the prefix length of each host's subnet.
	HostBits int
	// VNI is the VXLAN network identifier.
	VNI uint32
	// Port is the VXLAN UDP port.
	Port uint16
	// UnderlayMTU is the MTU of the network between hosts; the overlay
	// MTU is this less the encapsulation overhead.
	UnderlayMTU int
	// IPv6, a /96, gives containers IPv6 overlay addresses as well: a
	// container's is this prefix with its IPv4 overlay address as the
	// last 32 bits (ipv6.go). Zero: IPv4 only.
	IPv6 netip.Prefix
}

// ParseConfig builds a Config from text as a user types it, applying defaults
// for zero values and validating the result.
func ParseConfig(cidr string, hostBits int) (Config, error) {
	prefix, err := ParsePrefix("overlay CIDR", cidr)
	if err != nil {
		return Config{}, err
	}
	c := Config{CIDR: prefix, HostBits: hostBits}.withDefaults()
	return c, c.Validate()
}

// ParsePrefix parses an IPv4 CIDR, naming what it is in the error. The
// address must be the network address (198.19.0.0/16, not 198.19.3.4/16).
func ParsePrefix(what, text string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(text)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s %q is not a CIDR such as 198.19.0.0/16", what, text)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%s %q: only IPv4 is supported", what, text)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s %q has host bits set; did you mean %s?", what, text, p.Masked())
	}
	return p, nil
}

func (c Config) withDefaults() Config {
	if c.HostBits == 0 {
		c.HostBits = DefaultHostBits
	}
	if c.VNI == 0 {
		c.VNI = DefaultVNI
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.UnderlayMTU == 0 {
		c.UnderlayMTU = DefaultUnderlayMTU
	}
	return c
}

// Validate reports the first problem with the configuration.
func (c Config) Validate() error {
	if !c.CIDR.IsValid() || !c.CIDR.Addr().Is4() {
		return errors.New("overlay CIDR must be an IPv4 prefix")
	}
	if c.HostBits <= c.CIDR.Bits() || c.HostBits > 30 {
		return fmt.Errorf("host_bits %d: a host's subnet must be longer than the overlay CIDR %s and at most /30 (such as 24)", c.HostBits, c.CIDR)
	}
	if c.VNI == 0 || c.VNI >= 1<<24 {
		return fmt.Errorf("VXLAN VNI %d out of range 1..16777215", c.VNI)
	}
	if c.UnderlayMTU < 576+vxlanOverhead {
		return fmt.Errorf("underlay MTU %d too small for VXLAN", c.UnderlayMTU)
	}
	if c.HasIPv6() {
		if err := checkIPv6Prefix(c.IPv6); err != nil {
			return fmt.Errorf("overlay IPv6 prefix %s: %v", c.IPv6, err)
		}
		if c.MTU() < 1280 {
			return fmt.Errorf("underlay MTU %d too small for IPv6 over VXLAN (the overlay MTU must be at least 1280)", c.UnderlayMTU)
		}
	}
	return nil
}

// MTU is the MTU of overlay interfaces.
func (c Config) MTU() int { return c.UnderlayMTU - vxlanOverhead }

// CheckUnderlay returns an error if the underlay (host) network overlaps the
// overlay address space: packets could not tell the two apart.
func (c Config) CheckUnderlay(underlay netip.Prefix) error {
	if underlay.Overlaps(c.CIDR) {
		return fmt.Errorf("underlay network %s overlaps overlay CIDR %s", underlay, c.CIDR)
	}
	return nil
}
