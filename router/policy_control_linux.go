package router

import (
	"errors"
	"fmt"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/policy"
	"github.com/slimnet/slim/secure"
)

// The policy of secure mode, as the control API shows and changes it
// (docs/control.md: policy_list, policy_add, policy_del).
//
// r.policy is nil unless the router runs in secure mode. It is replaced,
// never changed in place: a change is made on a copy, saved to
// config.PolicyPath(), and only then installed, so the file and the rules
// in force agree even when saving fails. r.policyMu guards r.policy and
// orders changes; the secure-mode hooks (preparePolicy, installPolicy,
// policyHits) are called with it held and must not lock it.
//
// A change is all or nothing: it is checked against secure mode's limit
// (secure.MaxRules) and loaded into the kernel beside the rules in force,
// then saved, then swapped in whole. If any step fails, the file, the
// kernel and r.policy keep the old policy and the error says so.

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
	if err := checkPolicySize(set.Len()); err != nil {
		return fmt.Errorf("policy file %s: %w: remove rules from it and start again", r.config.PolicyPath(), err)
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
	if r.onClusterStore() {
		return r.addClusterPolicy(text, position)
	}
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
	if n >= secure.MaxRules {
		return 0, nil, fmt.Errorf("policy not changed: the policy is full: it has %d rules, the limit of secure mode (delete a rule first)", n)
	}
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
	if r.onClusterStore() {
		return r.deleteClusterPolicy(position)
	}
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

// commitPolicy makes a changed copy of the policy the one in force, all
// or nothing: prepared in the kernel, saved, swapped in; then the live
// connections it denies are revoked. It returns the rules in force.
// r.policyMu is held.
func (r *Router) commitPolicy(next *policy.Set, change string, position int, text string) ([]control.PolicyRule, error) {
	prepared, err := r.preparePolicy(next)
	if err != nil {
		return nil, fmt.Errorf("policy not changed: %w", err)
	}
	path := r.config.PolicyPath()
	if err := next.Save(path); err != nil {
		prepared.discard()
		return nil, fmt.Errorf("policy not changed: %w", err)
	}
	if err := r.installPolicy(prepared); err != nil {
		if restoreErr := r.policy.Save(path); restoreErr != nil {
			r.log.Error("policy file holds a change that is not in force", "file", path, "err", restoreErr)
		}
		return nil, fmt.Errorf("policy not changed: %w", err)
	}
	r.policy = next
	revokeErr := r.revoke(prepared.rules)
	rules := r.policyRulesLocked()
	if revokeErr != nil {
		r.log.Error("policy changed but revoking connections failed", "change", change, "position", position, "rule", text, "err", revokeErr)
		return rules, fmt.Errorf("the policy changed, but revoking the live connections it denies failed: %v", revokeErr)
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
