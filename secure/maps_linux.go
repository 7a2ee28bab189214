package secure

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	prebuilt "github.com/slimnet/slim/embed"
)

// Kinds of socket the programs know (enum slim_kind in secure.c).
const (
	KindPool     = 1 // pool socket, not yet connected
	kindConnect  = 2 // set by the connect4 program
	KindListener = 3 // host listener (and what it accepts)
)

// MaxRules is how many policy rules the programs hold (SLIM_MAX_RULES in
// secure.c): a longer policy is refused whole, before anything changes.
const MaxRules = 4096

// Settings are what every program reads.
type Settings struct {
	RouterCgroup uint64 // cgroup id of the router: its calls pass
	K0, K1       uint64 // SipHash key of the SYN MAC
	Overlay      netip.Prefix
	// BindPortMin..BindPortMax are the ports a container may bind a fresh
	// pool socket to (the port its app bound); 0 refuses every bind.
	BindPortMin, BindPortMax uint16
}

// BPFRule is a policy rule in the form the programs evaluate: addresses
// and masks, a port range, allow or deny.
type BPFRule struct {
	From, To         netip.Prefix // zero Prefix: any
	PortMin, PortMax uint16       // 0..0: any
	Deny             bool
}

// Conn is an accelerated connection a container made, as connect4
// recorded it in the socket's state.
type Conn struct {
	Src netip.Addr
	Dst netip.AddrPort
}

// be32 is an IPv4 address as the programs see it: the network-order
// bytes read as a little-endian integer.
func be32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.LittleEndian.Uint32(b[:])
}

// be16 is a port in network order, read as a little-endian integer.
func be16(port uint16) uint16 { return port>>8 | port<<8 }

func addrOf(v uint32) netip.Addr {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func netAndMask(p netip.Prefix) (net, mask uint32) {
	if !p.IsValid() {
		return 0, 0
	}
	m := [4]byte{}
	bits := p.Bits()
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
		}
		bits = max(bits-8, 0)
	}
	mask = binary.LittleEndian.Uint32(m[:])
	return be32(p.Masked().Addr()) & mask, mask
}

// Configure writes the settings every program reads.
func (d *Datapath) Configure(s Settings) error {
	var cur prebuilt.SecureSlimConfig
	zero := uint32(0)
	if err := d.objs.SlimSettings.Lookup(zero, &cur); err != nil {
		return fmt.Errorf("secure mode: reading settings: %w", err)
	}
	cur.RouterCgroup, cur.K0, cur.K1 = s.RouterCgroup, s.K0, s.K1
	cur.OverlayNet, cur.OverlayMask = netAndMask(s.Overlay)
	cur.BindPortMin, cur.BindPortMax = s.BindPortMin, s.BindPortMax
	return d.objs.SlimSettings.Update(zero, cur, ebpf.UpdateAny)
}

// SetSocket records what a host socket the router made is for: kind,
// the owner's overlay address and, for listeners, the overlay port; the
// socket counts as open (LiveSockets) until its release.
func (d *Datapath) SetSocket(fd int, kind uint32, owner netip.AddrPort) error {
	v := prebuilt.SecureSlimSk{Kind: kind, SelfIp: be32(owner.Addr()), SelfPort: be16(owner.Port())}
	if err := d.objs.SlimSocks.Update(int32(fd), v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("secure mode: socket state: %w", err)
	}
	return d.trackSocket(fd)
}

// SetRoutes makes the accelerated listeners (overlay -> host address)
// exactly those given.
func (d *Datapath) SetRoutes(routes map[netip.AddrPort]netip.AddrPort) error {
	m := d.objs.SlimRoutes
	want := map[prebuilt.SecureSlimAddr]prebuilt.SecureSlimAddr{}
	for o, h := range routes {
		want[slimAddr(o)] = slimAddr(h)
	}
	var (
		key   prebuilt.SecureSlimAddr
		value prebuilt.SecureSlimAddr
		stale []prebuilt.SecureSlimAddr
	)
	it := m.Iterate()
	for it.Next(&key, &value) {
		if w, ok := want[key]; !ok || w != value {
			stale = append(stale, key)
		}
	}
	for _, k := range stale {
		m.Delete(k)
	}
	for k, v := range want {
		if err := m.Update(k, v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("secure mode: route %v: %w", k, err)
		}
	}
	return it.Err()
}

func slimAddr(a netip.AddrPort) prebuilt.SecureSlimAddr {
	return prebuilt.SecureSlimAddr{Ip: be32(a.Addr()), Port: be16(a.Port())}
}

// SetContainer tells the overlay policy check which overlay address the
// processes of a cgroup have.
func (d *Datapath) SetContainer(cgroupID uint64, addr netip.Addr) error {
	return d.objs.SlimContainers.Update(cgroupID, be32(addr), ebpf.UpdateAny)
}
