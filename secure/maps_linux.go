package secure

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	slimembed "github.com/slimnet/slim/embed"
)

// Kinds of socket the programs know (enum slim_kind in secure.c).
const (
	KindPool     = 1 // pool socket, not yet connected
	kindConnect  = 2 // set by the connect4 program
	KindListener = 3 // host listener (and what it accepts)
)

// MaxRules is how many policy rules the programs evaluate.
const MaxRules = 64

// Settings are what every program reads.
type Settings struct {
	RouterCgroup uint64 // cgroup id of the router: its calls pass
	K0, K1       uint64 // SipHash key of the SYN MAC
	Overlay      netip.Prefix
	// BindPortMin is the host's first ephemeral port: a container may
	// bind a fresh pool socket to a port from there (its app's own).
	BindPortMin uint16
}

// BPFRule is a policy rule in the form the programs evaluate: addresses
// and masks, a port range, allow or deny.
type BPFRule struct {
	From, To         netip.Prefix // zero Prefix: any
	PortMin, PortMax uint16       // 0..0: any
	Deny             bool
}

// Conn is an accelerated connection a container made, as connect4
// recorded it.
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

// Configure writes the settings every program reads, keeping the rule
// count.
func (d *Datapath) Configure(s Settings) error {
	var cur slimembed.SecureSlimConfig
	zero := uint32(0)
	if err := d.objs.SlimSettings.Lookup(zero, &cur); err != nil {
		return fmt.Errorf("secure mode: reading settings: %w", err)
	}
	cur.RouterCgroup, cur.K0, cur.K1 = s.RouterCgroup, s.K0, s.K1
	cur.OverlayNet, cur.OverlayMask = netAndMask(s.Overlay)
	cur.BindPortMin = s.BindPortMin
	return d.objs.SlimSettings.Update(zero, cur, ebpf.UpdateAny)
}

// SetSocket records what a host socket the router made is for: kind,
// the owner's overlay address and, for listeners, the overlay port.
func (d *Datapath) SetSocket(fd int, kind uint32, owner netip.AddrPort) error {
	v := slimembed.SecureSlimSk{Kind: kind, SelfIp: be32(owner.Addr()), SelfPort: be16(owner.Port())}
	if err := d.objs.SlimSocks.Update(int32(fd), v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("secure mode: socket state: %w", err)
	}
	return nil
}

// SetRoutes makes the accelerated listeners (overlay -> host address)
// exactly those given.
func (d *Datapath) SetRoutes(routes map[netip.AddrPort]netip.AddrPort) error {
	m := d.objs.SlimRoutes
	want := map[slimembed.SecureSlimAddr]slimembed.SecureSlimAddr{}
	for o, h := range routes {
		want[slimAddr(o)] = slimAddr(h)
	}
	var (
		key   slimembed.SecureSlimAddr
		value slimembed.SecureSlimAddr
		stale []slimembed.SecureSlimAddr
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

func slimAddr(a netip.AddrPort) slimembed.SecureSlimAddr {
	return slimembed.SecureSlimAddr{Ip: be32(a.Addr()), Port: be16(a.Port())}
}

// SetRules replaces the policy the programs evaluate and zeroes the hit
// counts of the positions that changed.
func (d *Datapath) SetRules(rules []BPFRule) error {
	if len(rules) > MaxRules {
		return fmt.Errorf("secure mode: %d rules, at most %d fit", len(rules), MaxRules)
	}
	var cfg slimembed.SecureSlimConfig
	zero := uint32(0)
	if err := d.objs.SlimSettings.Lookup(zero, &cfg); err != nil {
		return err
	}
	// Shrink first, so no program sees a half-written list's tail.
	cfg.Nrules = min(cfg.Nrules, uint32(len(rules)))
	if err := d.objs.SlimSettings.Update(zero, cfg, ebpf.UpdateAny); err != nil {
		return err
	}
	for i, r := range rules {
		v := slimembed.SecureSlimRule{PortLo: r.PortMin, PortHi: r.PortMax}
		if r.PortMax == 0 {
			v.PortLo, v.PortHi = 0, 0xffff
		}
		v.SrcNet, v.SrcMask = netAndMask(r.From)
		v.DstNet, v.DstMask = netAndMask(r.To)
		if r.Deny {
			v.Deny = 1
		}
		if err := d.objs.SlimRules.Update(uint32(i), v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("secure mode: rule %d: %w", i+1, err)
		}
	}
	cfg.Nrules = uint32(len(rules))
	return d.objs.SlimSettings.Update(zero, cfg, ebpf.UpdateAny)
}

// ResetHits zeroes the hit counts from position i (0-based) on.
func (d *Datapath) ResetHits(from int) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	zeros := make([]uint64, cpus)
	for i := from; i < MaxRules; i++ {
		if err := d.objs.SlimHits.Update(uint32(i), zeros, ebpf.UpdateAny); err != nil {
			return err
		}
	}
	return nil
}

// Hits returns the hit count of each rule position.
func (d *Datapath) Hits(n int) ([]uint64, error) {
	out := make([]uint64, n)
	for i := range min(n, MaxRules) {
		var per []uint64
		if err := d.objs.SlimHits.Lookup(uint32(i), &per); err != nil {
			return nil, err
		}
		for _, v := range per {
			out[i] += v
		}
	}
	return out, nil
}

// Counter names, in the order of enum slim_counter.
var counterNames = []string{
	"policy_denied", "connect_refused", "bind_refused", "sockopt_refused", "syn_dropped", "syn_verified",
}

// Counters returns the programs' event counts by name.
func (d *Datapath) Counters() (map[string]uint64, error) {
	out := map[string]uint64{}
	for i, name := range counterNames {
		var per []uint64
		if err := d.objs.SlimCounters.Lookup(uint32(i), &per); err != nil {
			return nil, err
		}
		for _, v := range per {
			out[name] += v
		}
	}
	return out, nil
}

// Conns returns the accelerated connections containers made, by socket
// cookie (some may have closed since).
func (d *Datapath) Conns() (map[uint64]Conn, error) {
	out := map[uint64]Conn{}
	var (
		cookie uint64
		c      slimembed.SecureSlimConn
	)
	it := d.objs.SlimConns.Iterate()
	for it.Next(&cookie, &c) {
		out[cookie] = Conn{Src: addrOf(c.SrcIp), Dst: netip.AddrPortFrom(addrOf(c.DstIp), be16(c.DstPort))}
	}
	return out, it.Err()
}

// ForgetConns removes connections that are gone from the table.
func (d *Datapath) ForgetConns(cookies []uint64) {
	for _, c := range cookies {
		d.objs.SlimConns.Delete(c)
	}
}

// SetContainer tells the overlay policy check which overlay address the
// processes of a cgroup have; the zero Addr removes the entry.
func (d *Datapath) SetContainer(cgroupID uint64, addr netip.Addr) error {
	if !addr.IsValid() {
		err := d.objs.SlimContainers.Delete(cgroupID)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		return err
	}
	return d.objs.SlimContainers.Update(cgroupID, be32(addr), ebpf.UpdateAny)
}

// Matches reports whether the rule applies, exactly as the programs
// decide it.
func (r BPFRule) Matches(src netip.Addr, dst netip.AddrPort) bool {
	switch {
	case r.From.IsValid() && !r.From.Contains(src):
		return false
	case r.To.IsValid() && !r.To.Contains(dst.Addr()):
		return false
	case r.PortMax != 0 && (dst.Port() < r.PortMin || dst.Port() > r.PortMax):
		return false
	}
	return true
}

// Denies applies rules in order: the first match decides; none allows.
func Denies(rules []BPFRule, src netip.Addr, dst netip.AddrPort) bool {
	for _, r := range rules {
		if r.Matches(src, dst) {
			return r.Deny
		}
	}
	return false
}
