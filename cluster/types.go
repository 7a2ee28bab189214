package cluster

import (
	"fmt"
	"net/netip"
	"regexp"
	"time"
)

// Member is a host of the cluster, as its router published it.
type Member struct {
	// ID names the host for as long as it is part of the cluster: its
	// subnet claim and its records are keyed by it, so a router that
	// restarts with the same ID gets its subnet back.
	ID string `json:"id"`
	// Underlay is the address peers send VXLAN packets and reach the
	// router at.
	Underlay netip.Addr `json:"underlay"`
	// Subnet is the host's share of the overlay.
	Subnet netip.Prefix `json:"subnet"`
	// PeerPort is the router's peer port (0: none published).
	PeerPort uint16 `json:"peer_port,omitempty"`
}

// Claim is a host subnet held for a host: it lasts longer than the
// host's membership (the grace period), so that the overlay keeps a
// route to a host that is restarting and the subnet is not handed to
// another host meanwhile.
type Claim struct {
	Subnet   netip.Prefix `json:"subnet"`
	ID       string       `json:"id"`
	Underlay netip.Addr   `json:"underlay"`
}

// Listener maps an accelerated listener's overlay address to the host
// listener standing for it.
type Listener struct {
	Overlay netip.AddrPort `json:"overlay"`
	Host    netip.AddrPort `json:"host"`
	// Flags are its directory slot flags (router/directory): which
	// families of clients it takes; 0, IPv4 ones.
	Flags uint16 `json:"flags,omitempty"`
}

// Network is the overlay's layout, the same on every host.
type Network struct {
	Overlay  netip.Prefix `json:"overlay"`
	HostBits int          `json:"host_bits"`
	// IPv6 is the containers' IPv6 prefix (a /96, docs/overlay.md);
	// zero: IPv4 only, or not recorded by a router from before it was.
	IPv6 netip.Prefix `json:"overlay_ipv6,omitzero"`
}

// Policy is the cluster's policy document: the rules as router/policy
// encodes them, opaque to the store, and the store's version of it.
type Policy struct {
	Rules    []byte `json:"rules,omitempty"`
	Revision int64  `json:"revision"` // 0: never set
}

// Self is what a router tells the store about its host when it joins.
type Self struct {
	ID       string
	Underlay netip.Addr
	// Subnet is the subnet the host must have (its containers' addresses
	// are in it); zero: the one it had before, or any free one.
	Subnet   netip.Prefix
	PeerPort uint16
	Network  Network
}

// Health is a store's state for `slim status` and `slim top`.
type Health struct {
	Backend   string   `json:"backend"` // "static", "etcd"
	Endpoints []string `json:"endpoints,omitempty"`
	// Connected: the backend answered within the last lease period.
	// Joined: this host is a member (a router that started while the
	// store did not answer serves from its saved state until it joins).
	Joined    bool      `json:"joined"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"` // of the current Connected value
	LastError string    `json:"last_error,omitempty"`
	ErrorAt   time.Time `json:"error_at,omitzero"`
	// Revision is the backend's revision of the state served.
	Revision int64 `json:"revision"`
	// LastWrite is when the store last took a write of this host (its
	// join, its listeners, a policy change); LastWatch when it last sent
	// the state (a watch event or progress notification, or a full read);
	// LastRenewal when it last renewed this host's leases. Zero: never.
	LastWrite   time.Time `json:"last_write,omitzero"`
	LastWatch   time.Time `json:"last_watch,omitzero"`
	LastRenewal time.Time `json:"last_renewal,omitzero"`
	// Unpublished: this host's latest listeners are not in the store
	// yet (they are being retried). Pending is how many lists were
	// published since the last one the store took (the store writes only
	// the latest), and PendingSince since when they wait.
	Unpublished  bool      `json:"unpublished"`
	Pending      uint64    `json:"pending,omitempty"`
	PendingSince time.Time `json:"pending_since,omitzero"`
	Members      int       `json:"members"`
	Listeners    int       `json:"listeners"`
	// Resyncs counts full re-reads (after a compaction or a lost lease).
	Resyncs int `json:"resyncs"`
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// CheckID says whether id can name a host: 1 to 63 letters, digits, dots,
// dashes and underscores, starting with a letter or digit (it is part of
// keys and of etcd user names).
func CheckID(id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("host id %q: want 1 to 63 letters, digits, '.', '-' or '_', starting with a letter or digit", id)
	}
	return nil
}

// Check says whether a joining host's description makes sense.
func (s Self) Check() error {
	if err := CheckID(s.ID); err != nil {
		return err
	}
	if !s.Underlay.Is4() {
		return fmt.Errorf("host %s: underlay %v is not an IPv4 address", s.ID, s.Underlay)
	}
	if err := s.Network.Check(); err != nil {
		return err
	}
	if s.Network.Overlay.Contains(s.Underlay) {
		return fmt.Errorf("host %s: underlay %s lies inside the overlay %s", s.ID, s.Underlay, s.Network.Overlay)
	}
	if s.Subnet.IsValid() && !s.Network.HasSubnet(s.Subnet) {
		return fmt.Errorf("host %s: subnet %s is not a /%d of the overlay %s", s.ID, s.Subnet, s.Network.HostBits, s.Network.Overlay)
	}
	return nil
}

// Check says whether the network makes sense.
func (n Network) Check() error {
	if !n.Overlay.IsValid() || !n.Overlay.Addr().Is4() || n.Overlay.Masked() != n.Overlay {
		return fmt.Errorf("overlay %v is not an IPv4 network such as 198.19.0.0/16", n.Overlay)
	}
	if n.HostBits <= n.Overlay.Bits() || n.HostBits > 30 {
		return fmt.Errorf("host_bits %d: a host's subnet must be longer than the overlay %s and at most /30", n.HostBits, n.Overlay)
	}
	if n.IPv6.IsValid() && (!n.IPv6.Addr().Is6() || n.IPv6.Addr().Is4In6() || n.IPv6.Bits() != 96 || n.IPv6.Masked() != n.IPv6) {
		return fmt.Errorf("overlay_ipv6 %v is not an IPv6 /96 such as 2001:2::/96", n.IPv6)
	}
	return nil
}

// Differs says how a router's layout, mine, differs from n, the one a
// cluster recorded (nil: they agree). An IPv6 prefix only one of them has
// is no difference: a router without one gives its containers none, and a
// record from before IPv6 prefixes were recorded has none.
func (n Network) Differs(mine Network) error {
	if n.Overlay != mine.Overlay || n.HostBits != mine.HostBits {
		return fmt.Errorf("this router's overlay is %s with /%d host subnets, the cluster's is %s with /%d",
			mine.Overlay, mine.HostBits, n.Overlay, n.HostBits)
	}
	if n.IPv6.IsValid() && mine.IPv6.IsValid() && n.IPv6 != mine.IPv6 {
		return fmt.Errorf("this router's overlay_ipv6 is %s, the cluster's is %s", mine.IPv6, n.IPv6)
	}
	return nil
}

// HasSubnet says whether p is one of the network's host subnets.
func (n Network) HasSubnet(p netip.Prefix) bool {
	return p.IsValid() && p.Bits() == n.HostBits && p.Masked() == p && n.Overlay.Contains(p.Addr())
}

// Subnets is the number of host subnets.
func (n Network) Subnets() int { return 1 << (n.HostBits - n.Overlay.Bits()) }

// Subnet is the index-th host subnet (0 is the first).
func (n Network) Subnet(index int) netip.Prefix {
	a := n.Overlay.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(index) << (32 - n.HostBits)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), n.HostBits)
}

// CheckListeners refuses listeners a member has no business announcing:
// overlay addresses outside its subnet, host addresses not its underlay
// address, port 0 on either side.
func (m Member) CheckListeners(listeners []Listener) error {
	for _, l := range listeners {
		switch {
		case !m.Subnet.Contains(l.Overlay.Addr()):
			return fmt.Errorf("listener %s → %s: not in host %s's subnet %s", l.Overlay, l.Host, m.ID, m.Subnet)
		case l.Host.Addr() != m.Underlay:
			return fmt.Errorf("listener %s → %s: the host address is not host %s's own (%s)", l.Overlay, l.Host, m.ID, m.Underlay)
		case l.Overlay.Port() == 0 || l.Host.Port() == 0:
			return fmt.Errorf("listener %s → %s of host %s: port 0", l.Overlay, l.Host, m.ID)
		}
	}
	return nil
}
