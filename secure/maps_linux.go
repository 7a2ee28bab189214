package secure

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	prebuilt "github.com/slimnet/slim/embed"
)

// Kinds of socket the programs know (enum slim_kind in secure.c).
const (
	KindPool     = 1 // pool socket, not yet connected
	kindConnect  = 2 // set by the connect4 (connect6) program
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
	// OverlayIPv6 is the IPv6 overlay's /96 (zero: none): connects to
	// its addresses get the policy of the IPv4 address they carry.
	OverlayIPv6 netip.Prefix
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
// (connect6 for an AF_INET6 socket) recorded it in the socket's state.
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

// prefix96 is an IPv6 /96 as the programs compare it: three words in
// network byte order; zero for none.
func prefix96(p netip.Prefix) (words [3]uint32) {
	if !p.IsValid() || !p.Addr().Is6() {
		return words
	}
	b := p.Masked().Addr().As16()
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return words
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
	cur.Overlay6 = prefix96(s.OverlayIPv6)
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

// SetPoolSockets is SetSocket for a batch of pool sockets of one owner,
// whose cookies the caller read: one socket-state update per socket, and
// one batch update of the open sockets for them all (a POOL's 32 sockets
// cost 33 map updates, not 64, and no SO_COOKIE of its own).
func (d *Datapath) SetPoolSockets(fds []int, cookies []uint64, owner netip.Addr) error {
	v := prebuilt.SecureSlimSk{Kind: KindPool, SelfIp: be32(owner)}
	for _, fd := range fds {
		if err := d.objs.SlimSocks.Update(int32(fd), v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("secure mode: socket state: %w", err)
		}
	}
	return d.trackCookies(cookies)
}

// ListenerOf returns the overlay address a host listener was marked with
// (SetSocket with KindListener); false if the socket has no such state.
func (d *Datapath) ListenerOf(fd int) (netip.AddrPort, bool) {
	var v prebuilt.SecureSlimSk
	if err := d.objs.SlimSocks.Lookup(int32(fd), &v); err != nil || v.Kind != KindListener {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addrOf(v.SelfIp), be16(v.SelfPort)), true
}

// SetRoutes makes slim_routes hold routes (overlay listener → host
// listener), changing only what differs from what it holds: a router
// calls it on every directory change, and a cluster's directory may hold
// a hundred thousand listeners.
func (d *Datapath) SetRoutes(routes map[netip.AddrPort]netip.AddrPort) error {
	if d.routes == nil {
		held, err := d.readRoutes()
		if err != nil {
			return err
		}
		d.routes = held
	}
	m := d.objs.SlimRoutes
	want := make(map[prebuilt.SecureSlimAddr]prebuilt.SecureSlimAddr, len(routes))
	for o, h := range routes {
		want[slimAddr(o)] = slimAddr(h)
	}
	for k := range d.routes {
		if _, ok := want[k]; !ok {
			if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("secure mode: removing the route of %v: %w", addrPortOf(k), err)
			}
			delete(d.routes, k)
		}
	}
	for k, v := range want {
		if have, ok := d.routes[k]; ok && have == v {
			continue
		}
		if err := m.Update(k, v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("secure mode: route of %v (%d routes, room for %d): %w", addrPortOf(k), len(want), m.MaxEntries(), err)
		}
		d.routes[k] = v
	}
	return nil
}

// readRoutes reads what slim_routes holds.
func (d *Datapath) readRoutes() (map[prebuilt.SecureSlimAddr]prebuilt.SecureSlimAddr, error) {
	held := map[prebuilt.SecureSlimAddr]prebuilt.SecureSlimAddr{}
	var key, value prebuilt.SecureSlimAddr
	it := d.objs.SlimRoutes.Iterate()
	for it.Next(&key, &value) {
		held[key] = value
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("secure mode: reading routes: %w", err)
	}
	return held, nil
}

// routesCapacity is how many listeners slim_routes has room for: a
// cluster's whole directory (1000 hosts of 100 listeners fit ten times).
// Its entries are allocated as they are added (BPF_F_NO_PREALLOC), so
// room costs no memory.
const routesCapacity = 1 << 20

// sizeRoutes gives slim_routes its room; the object file's size (65536,
// preallocated) is what an older router pinned, which Load then replaces.
func sizeRoutes(spec *ebpf.MapSpec) {
	spec.MaxEntries = routesCapacity
	spec.Flags |= unix.BPF_F_NO_PREALLOC
}

// addrPortOf is slimAddr's inverse, for messages.
func addrPortOf(a prebuilt.SecureSlimAddr) netip.AddrPort {
	return netip.AddrPortFrom(addrOf(a.Ip), be16(a.Port))
}

func slimAddr(a netip.AddrPort) prebuilt.SecureSlimAddr {
	return prebuilt.SecureSlimAddr{Ip: be32(a.Addr()), Port: be16(a.Port())}
}

// SetContainer tells the overlay policy check which overlay address the
// processes of a cgroup have.
func (d *Datapath) SetContainer(cgroupID uint64, addr netip.Addr) error {
	return d.objs.SlimContainers.Update(cgroupID, be32(addr), ebpf.UpdateAny)
}
