package router

import (
	"errors"
	"fmt"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/policy"
)

// The policy of secure mode, as the control API shows and changes it
// (docs/control.md: policy_list, policy_add, policy_del).
//
// r.policy is nil unless the router runs in secure mode. It is replaced,
// never changed in place: a change is made on a copy, saved to
// config.PolicyPath(), and only then installed, so the file and the rules
// in force agree even when saving fails. r.policyMu guards r.policy and
// orders changes; the secure-mode hooks policyChanged and policyHits are
// called with it held (they read r.policy directly and must not lock it).

var errNotSecure = errors.New("policy needs secure mode: start the router with --secure")

// loadPolicy reads the saved rules at startup. A missing file is an empty
// policy; a corrupt one is an error naming the file.
func (r *Router) loadPolicy() error {
	if !r.config.Secure {
		return nil
	}
	set, err := policy.Load(r.config.PolicyPath())
	if err != nil {
		return err
	}
	r.policyMu.Lock()
	r.policy = set
	r.policyMu.Unlock()
	if n := set.Len(); n > 0 {
		r.log.Info("policy loaded", "file", r.config.PolicyPath(), "rules", n)
	}
	return nil
}

// policyRules is the policy for a snapshot: empty outside secure mode.
func (r *Router) policyRules() []control.PolicyRule {
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	if r.policy == nil {
		return []control.PolicyRule{}
	}
	return r.policyRulesLocked()
}

// policyRulesLocked lists r.policy with the kernel's hit counts (zero
// when they cannot be read).
func (r *Router) policyRulesLocked() []control.PolicyRule {
	listed := r.policy.List()
	hits := r.policyHits()
	out := make([]control.PolicyRule, len(listed))
	for i, l := range listed {
		out[i] = control.PolicyRule{Position: i + 1, Rule: l.Text, Action: string(l.Rule.Action)}
		if i < len(hits) {
			out[i].Hits = hits[i]
		}
	}
	return out
}

// policyAPI serves the control API's policy operations.
type policyAPI struct{ r *Router }

var _ control.PolicyHandler = policyAPI{}

// ListPolicy lists the rules with their hits.
func (p policyAPI) ListPolicy() ([]control.PolicyRule, error) {
	r := p.r
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	if r.policy == nil {
		return nil, errNotSecure
	}
	return r.policyRulesLocked(), nil
}

// AddPolicy inserts a rule at a 1-based position, 0 appending it.
func (p policyAPI) AddPolicy(text string, position int) (int, []control.PolicyRule, error) {
	r := p.r
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	if r.policy == nil {
		return 0, nil, errNotSecure
	}
	rule, err := policy.Parse(text)
	if err != nil {
		return 0, nil, err
	}
	n := r.policy.Len()
	if position < 0 || position > n+1 {
		return 0, nil, fmt.Errorf("position %d is out of range: the policy has %s, so a new rule goes at 1 to %d (or give no position to append)", position, rulesCount(n), n+1)
	}
	next := r.policy.Clone()
	at := next.Add(rule, position-1) // position 0: -1, the end
	rules, err := r.commitPolicy(next, "add", at+1, rule.String())
	return at + 1, rules, err
}

// DeletePolicy deletes the rule at a 1-based position.
func (p policyAPI) DeletePolicy(position int) ([]control.PolicyRule, error) {
	r := p.r
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	if r.policy == nil {
		return nil, errNotSecure
	}
	n := r.policy.Len()
	if position < 1 || position > n {
		if n == 0 {
			return nil, fmt.Errorf("no rule %d: the policy has no rules", position)
		}
		return nil, fmt.Errorf("no rule %d: the policy has %s (1 to %d)", position, rulesCount(n), n)
	}
	next := r.policy.Clone()
	gone := next.List()[position-1].Text
	if err := next.Delete(position - 1); err != nil {
		return nil, err
	}
	return r.commitPolicy(next, "delete", position, gone)
}

// commitPolicy saves a changed copy of the policy, installs it and
// applies it (policyChanged). It returns the rules in force. If saving
// fails, nothing changed; if applying fails, the change is saved and in
// r.policy, and the error says so. r.policyMu is held.
func (r *Router) commitPolicy(next *policy.Set, change string, position int, text string) ([]control.PolicyRule, error) {
	path := r.config.PolicyPath()
	if err := next.Save(path); err != nil {
		return nil, fmt.Errorf("policy not changed: %w", err)
	}
	r.policy = next
	applyErr := r.policyChanged()
	rules := r.policyRulesLocked()
	if applyErr != nil {
		r.log.Error("policy saved but not applied", "change", change, "position", position, "rule", text, "err", applyErr)
		return rules, fmt.Errorf("the policy change is saved in %s but applying it failed: %v", path, applyErr)
	}
	r.log.Info("policy changed", "change", change, "position", position, "rule", text, "rules", len(rules))
	return rules, nil
}

func rulesCount(n int) string {
	if n == 1 {
		return "1 rule"
	}
	return fmt.Sprintf("%d rules", n)
}
