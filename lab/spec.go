package lab

import (
	"fmt"
	"net/netip"
	"regexp"

	"github.com/slimnet/slim/overlay"
)

// Address plan of every lab (RFC 2544 benchmarking space only).
var (
	// WireCIDR holds the hosts' addresses on the shared wire: host I is
	// 198.18.0.I.
	WireCIDR = netip.MustParsePrefix("198.18.0.0/24")
	// OverlayCIDR is split into one /24 per host: host I owns 198.19.I.0/24.
	OverlayCIDR = netip.MustParsePrefix("198.19.0.0/16")
	// OverlayIPv6 is the IPv6 prefix of a lab built with Spec.IPv6: a
	// container's IPv6 overlay address is this with its IPv4 one as the
	// last 32 bits (2001:2::c613:102 for 198.19.1.2). RFC 5180 space.
	OverlayIPv6 = netip.MustParsePrefix("2001:2::/96")
)

// Limits of a lab's size.
const (
	MaxHosts      = 16
	MaxContainers = 32
)

// DefaultName is the lab name used when none is given.
const DefaultName = "slim"

var validName = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// Spec describes a lab to build.
type Spec struct {
	// Name prefixes every namespace of the lab; letters and digits only,
	// so that "NAME-" never matches another lab's namespaces.
	Name string
	// Hosts is the number of hosts on the wire.
	Hosts int
	// Containers is the number of containers per host.
	Containers int
	// Store is where the routers take the cluster's hosts from: "" (the
	// host list in each router's configuration) or StoreEtcd (a
	// three-member etcd on the wire: etcd_linux.go).
	Store string
	// IPv6 gives containers IPv6 overlay addresses (OverlayIPv6) too. The
	// wire stays IPv4 only.
	IPv6 bool
}

// StoreEtcd is the Spec.Store of a lab whose routers use etcd.
const StoreEtcd = "etcd"

// Validate reports the first problem with the spec.
func (s Spec) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if s.Hosts < 1 || s.Hosts > MaxHosts {
		return fmt.Errorf("a lab has 1 to %d hosts, not %d", MaxHosts, s.Hosts)
	}
	if s.Containers < 0 || s.Containers > MaxContainers {
		return fmt.Errorf("a lab has 0 to %d containers per host, not %d", MaxContainers, s.Containers)
	}
	if s.Store != "" && s.Store != StoreEtcd {
		return fmt.Errorf("lab store %q: want etcd, or none for the routers' host lists", s.Store)
	}
	return nil
}

// ValidateName checks a lab name.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("lab name %q must be 1-16 lowercase letters and digits, starting with a letter", name)
	}
	return nil
}

// overlayPlan lays out the overlay of a lab with the given number of hosts.
func overlayPlan(hosts int, ipv6 bool) (overlay.Plan, error) {
	config, err := overlay.ParseConfig(OverlayCIDR.String(), 24)
	if err != nil {
		return overlay.Plan{}, err
	}
	if ipv6 {
		config.IPv6 = OverlayIPv6
	}
	plan := overlay.Plan{Config: config}
	for i := 1; i <= hosts; i++ {
		subnet, err := config.HostSubnet(i)
		if err != nil {
			return overlay.Plan{}, err
		}
		plan.Hosts = append(plan.Hosts, overlay.HostPlan{Underlay: wireAddr(i).Addr(), Subnet: subnet})
	}
	if err := config.CheckUnderlay(WireCIDR); err != nil {
		return overlay.Plan{}, err
	}
	return plan, plan.Validate()
}

// wireAddr is host i's address on the wire (1-based).
func wireAddr(i int) netip.Prefix {
	a := WireCIDR.Addr().As4()
	a[3] = byte(i)
	return netip.PrefixFrom(netip.AddrFrom4(a), WireCIDR.Bits())
}
