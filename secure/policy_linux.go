package secure

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	slimembed "github.com/slimnet/slim/embed"
)

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

// ResetHits zeroes every rule position's hit count.
func (d *Datapath) ResetHits() error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	zeros := make([]uint64, cpus)
	for i := range MaxRules {
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

// SocketsMapFD is the socket-state map, for a sock_diag dump that
// reports each socket's state (sockdiag.TCPWithStorage).
func (d *Datapath) SocketsMapFD() int { return d.objs.SlimSocks.FD() }

// ConnectedSocket decodes a socket's state as dumped: the accelerated
// connection a container made through it, if it is one.
func ConnectedSocket(state []byte) (Conn, bool) {
	var st slimembed.SecureSlimSk
	if len(state) < binary.Size(st) {
		return Conn{}, false
	}
	if _, err := binary.Decode(state, binary.LittleEndian, &st); err != nil || st.Kind != kindConnect {
		return Conn{}, false
	}
	return Conn{Src: addrOf(st.SelfIp), Dst: netip.AddrPortFrom(addrOf(st.PeerIp), be16(st.PeerPort))}, true
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
