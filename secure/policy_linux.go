package secure

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	prebuilt "github.com/slimnet/slim/embed"
)

// RulesLimitError refuses a policy longer than the programs hold.
type RulesLimitError struct{ Rules int }

func (e *RulesLimitError) Error() string {
	return fmt.Sprintf("%d rules is over secure mode's limit of %d policy rules", e.Rules, MaxRules)
}

// RuleList is a policy loaded into the kernel but not yet in force: the
// programs read the list InstallRules last put in force, never one being
// filled. Close it if it is not installed.
type RuleList struct {
	m *ebpf.Map
}

// Close releases a list that was not installed.
func (l *RuleList) Close() {
	if l != nil && l.m != nil {
		l.m.Close()
	}
}

// PrepareRules fills a new rule list, in order. Nothing the programs read
// changes: a list that is too long, or that the kernel refuses, leaves the
// policy in force as it was.
func (d *Datapath) PrepareRules(rules []BPFRule) (*RuleList, error) {
	if len(rules) > MaxRules {
		return nil, &RulesLimitError{Rules: len(rules)}
	}
	m, err := ebpf.NewMap(d.ruleListSpec)
	if err != nil {
		return nil, fmt.Errorf("secure mode: a new policy list: %w", err)
	}
	list := &RuleList{m: m}
	if err := fillRules(m, rules); err != nil {
		list.Close()
		return nil, err
	}
	return list, nil
}

func fillRules(m *ebpf.Map, rules []BPFRule) error {
	if len(rules) == 0 {
		return nil
	}
	keys := make([]uint32, len(rules))
	values := make([]prebuilt.SecureSlimRule, len(rules))
	for i, r := range rules {
		keys[i], values[i] = uint32(i), r.encode()
	}
	_, err := m.BatchUpdate(keys, values, nil)
	if errors.Is(err, ebpf.ErrNotSupported) {
		for i := range keys {
			if err = m.Update(keys[i], values[i], ebpf.UpdateAny); err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("secure mode: filling the policy list: %w", err)
	}
	return nil
}

// encode is the rule as the programs read it.
func (r BPFRule) encode() prebuilt.SecureSlimRule {
	v := prebuilt.SecureSlimRule{PortLo: r.PortMin, PortHi: r.PortMax, Action: actionAllow}
	if r.PortMax == 0 {
		v.PortLo, v.PortHi = 0, 0xffff
	}
	v.SrcNet, v.SrcMask = netAndMask(r.From)
	v.DstNet, v.DstMask = netAndMask(r.To)
	if r.Deny {
		v.Action = actionDeny
	}
	return v
}

// Rule actions (enum slim_action in secure.c); 0 ends the list.
const (
	actionAllow = 1
	actionDeny  = 2
)

// InstallRules puts a prepared list in force in one step: from then on
// connects are checked against it, and before, against the previous one.
// The list is closed either way.
func (d *Datapath) InstallRules(list *RuleList) error {
	defer list.Close()
	if err := d.objs.SlimPolicy.Update(uint32(0), list.m, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("secure mode: putting the policy in force: %w", err)
	}
	return nil
}

// ResetHits zeroes the hit counts of the first n rule positions.
func (d *Datapath) ResetHits(n int) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	zeros := make([]uint64, cpus)
	for i := range min(n, MaxRules) {
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
	var st prebuilt.SecureSlimSk
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
