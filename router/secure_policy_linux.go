package router

import (
	"net/netip"
	"time"

	"github.com/slimnet/slim/router/policy"
	"github.com/slimnet/slim/router/sockdiag"
	"github.com/slimnet/slim/secure"
)

// policyChanged loads r.policy into the programs (new connects are checked
// against it at once) and revokes the accelerated connections it no longer
// allows. Outside secure mode there is nothing to do. Called with
// r.policyMu held.
func (r *Router) policyChanged() error {
	if r.secure == nil || r.policy == nil {
		return nil
	}
	listed := r.policy.List()
	rules := make([]secure.BPFRule, len(listed))
	for i, l := range listed {
		rules[i] = r.bpfRule(l.Rule)
	}
	if err := r.secure.load(listed, rules); err != nil {
		return err
	}
	return r.revoke(rules)
}

// bpfRule resolves a rule's container name to its overlay address. A
// container this router does not serve never connects through it: the
// rule then matches nothing here.
func (r *Router) bpfRule(rule policy.Rule) secure.BPFRule {
	b := secure.BPFRule{From: rule.FromCIDR, To: rule.To, PortMin: rule.PortMin, PortMax: rule.PortMax, Deny: rule.Action == policy.Deny}
	if rule.FromContainer != "" {
		b.From = netip.PrefixFrom(netip.IPv4Unspecified(), 32)
		for _, c := range r.containers.list() {
			if c.Name == rule.FromContainer {
				b.From = netip.PrefixFrom(c.Addr, 32)
			}
		}
	}
	return b
}

// load replaces the programs' rules, carrying each surviving rule's hits.
func (s *secureMode) load(listed []policy.Listed, rules []secure.BPFRule) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	hits, err := s.datapath.Hits(len(s.applied))
	if err != nil {
		return err
	}
	carried := map[string][]uint64{}
	for i, a := range s.applied {
		carried[a.text] = append(carried[a.text], a.carry+hits[i])
	}
	applied := make([]appliedRule, len(listed))
	for i, l := range listed {
		applied[i].text = l.Text
		if c := carried[l.Text]; len(c) > 0 {
			applied[i].carry, carried[l.Text] = c[0], c[1:]
		}
	}
	if err := s.datapath.SetRules(rules); err != nil {
		return err
	}
	s.applied = applied
	return s.datapath.ResetHits()
}

// policyHits is each rule's hit count, or nil outside secure mode.
// Called with r.policyMu held.
func (r *Router) policyHits() []uint64 {
	if r.secure == nil {
		return nil
	}
	s := r.secure
	s.mu.Lock()
	defer s.mu.Unlock()
	hits, err := s.datapath.Hits(len(s.applied))
	if err != nil {
		return nil
	}
	for i, a := range s.applied {
		hits[i] += a.carry
	}
	return hits
}

// revoke aborts the live accelerated connections the rules deny: the
// kernel resets them, so both applications see the connection end. The
// kernel's socket dump carries each socket's state, which says who
// connected where.
func (r *Router) revoke(rules []secure.BPFRule) error {
	started := time.Now()
	live, err := sockdiag.TCPWithStorage(sockdiag.Live, r.secure.datapath.SocketsMapFD())
	if err != nil {
		return err
	}
	revoked := 0
	for _, sock := range live {
		c, ok := secure.ConnectedSocket(sock.Storage)
		if !ok || !secure.Denies(rules, c.Src, c.Dst) {
			continue
		}
		if err := sockdiag.Destroy(sock); err != nil {
			r.log.Warn("revoking connection", "src", c.Src, "dst", c.Dst, "err", err)
			continue
		}
		revoked++
	}
	if revoked > 0 {
		r.log.Info("policy revoked connections", "count", revoked, "took", time.Since(started))
	}
	return nil
}
