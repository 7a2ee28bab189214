package router

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/slimnet/slim/router/policy"
	"github.com/slimnet/slim/router/sockdiag"
	"github.com/slimnet/slim/secure"
)

// preparedPolicy is a policy loaded into the kernel but not yet in force
// (secure.RuleList): a change is prepared, saved, then installed, so that
// the kernel never holds half of it.
type preparedPolicy struct {
	listed []policy.Listed
	rules  []secure.BPFRule
	list   *secure.RuleList // nil outside secure mode
}

// discard releases a prepared policy that is not installed.
func (p *preparedPolicy) discard() { p.list.Close() }

// checkPolicySize refuses a policy longer than secure mode holds.
func checkPolicySize(n int) error {
	if n > secure.MaxRules {
		return &secure.RulesLimitError{Rules: n}
	}
	return nil
}

// preparePolicy checks a policy against secure mode's limit and loads it
// into the kernel without putting it in force. Outside secure mode only
// the check is made. Called with r.policyMu held.
func (r *Router) preparePolicy(set *policy.Set) (*preparedPolicy, error) {
	p, err := r.compilePolicy(set)
	if err != nil {
		return nil, err
	}
	if p.list, err = r.mode.prepareRules(p.rules); err != nil {
		return nil, err
	}
	return p, nil
}

// compilePolicy checks a policy against secure mode's limit and turns it
// into the programs' rules, loading nothing.
func (r *Router) compilePolicy(set *policy.Set) (*preparedPolicy, error) {
	if err := checkPolicySize(set.Len()); err != nil {
		return nil, err
	}
	listed := set.List()
	p := &preparedPolicy{listed: listed, rules: make([]secure.BPFRule, len(listed))}
	for i, l := range listed {
		p.rules[i] = r.bpfRule(l.Rule)
	}
	return p, nil
}

// installPolicy puts a prepared policy in force: new connects are checked
// against it at once. Called with r.policyMu held.
func (r *Router) installPolicy(p *preparedPolicy) error { return r.mode.install(p) }

// applyPolicy prepares, installs and enforces r.policy again (a rule
// naming a container follows it). Called with r.policyMu held.
func (r *Router) applyPolicy() error {
	p, err := r.preparePolicy(r.policy)
	if err != nil {
		return err
	}
	if err := r.installPolicy(p); err != nil {
		return err
	}
	return r.revoke(p.rules)
}

// policyHits is each rule's hit count, or nil outside secure mode.
// Called with r.policyMu held.
func (r *Router) policyHits() []uint64 { return r.mode.hits() }

// revoke aborts the live accelerated connections the rules deny (nothing
// outside secure mode).
func (r *Router) revoke(rules []secure.BPFRule) error { return r.mode.revoke(rules) }

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

// prepareRules loads rules into the kernel beside those in force.
func (s *secureMode) prepareRules(rules []secure.BPFRule) (*secure.RuleList, error) {
	return s.datapath.PrepareRules(rules)
}

// install swaps the prepared rules in, carrying each surviving rule's
// hits. The prepared list is released either way.
func (s *secureMode) install(p *preparedPolicy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	hits, err := s.datapath.Hits(len(s.applied))
	if err != nil {
		p.discard()
		return fmt.Errorf("secure mode: reading the rules' hits: %w", err)
	}
	carried := map[string][]uint64{}
	for i, a := range s.applied {
		carried[a.text] = append(carried[a.text], a.carry+hits[i])
	}
	applied := make([]appliedRule, len(p.listed))
	for i, l := range p.listed {
		applied[i].text = l.Text
		if c := carried[l.Text]; len(c) > 0 {
			applied[i].carry, carried[l.Text] = c[0], c[1:]
		}
	}
	if err := s.datapath.InstallRules(p.list); err != nil {
		return err
	}
	positions := max(len(s.applied), len(applied))
	s.applied = applied
	return s.datapath.ResetHits(positions)
}

// hits is each rule's hit count, with the hits carried over changes.
func (s *secureMode) hits() []uint64 {
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
func (s *secureMode) revoke(rules []secure.BPFRule) error {
	started := time.Now()
	live, err := sockdiag.TCPWithStorage(sockdiag.Live, s.datapath.SocketsMapFD())
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
			s.log.Warn("revoking connection", "src", c.Src, "dst", c.Dst, "err", err)
			continue
		}
		revoked++
	}
	if revoked > 0 {
		s.log.Info("policy revoked connections", "count", revoked, "took", time.Since(started))
	}
	return nil
}
