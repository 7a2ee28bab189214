package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/policy"
	"github.com/slimnet/slim/secure"
)

// The policy of a secure router on a cluster store (docs/cluster.md,
// "Policy"): the rules are stored once, in the store; the control API's
// changes are made there (one compare-and-swap transaction), and every
// router follows the store's policy into its kernel and revokes the live
// connections of its containers that a change denies, as for a change made
// through its own control API (commitPolicy). DIR/policy.json keeps the
// last policy the router put in force: a router that starts while the
// store is unreachable enforces it until it reads the store's.
//
// Changes made while the store is unreachable fail (after
// clusterPolicyTimeout) and change nothing: a rule must not hold on one
// host and not on the others.

// clusterPolicyTimeout bounds a policy change in the store (slim policy
// waits 10 s for the whole request).
const clusterPolicyTimeout = 5 * time.Second

// onClusterStore says whether the policy lives in a cluster store.
func (r *Router) onClusterStore() bool { return r.clusterLink != nil }

// hasPolicy says whether the router has a policy (secure mode).
func (r *Router) hasPolicy() bool {
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	return r.policy != nil
}

// addClusterPolicy is AddPolicy on a cluster store. Nothing waits on the
// store holding r.policyMu.
func (r *Router) addClusterPolicy(text string, position int) (int, []control.PolicyRule, error) {
	if !r.hasPolicy() {
		return 0, nil, errNotSecure
	}
	rule, err := policy.Parse(text)
	if err != nil {
		return 0, nil, err
	}
	at := 0
	p, err := r.editClusterPolicy(func(set *policy.Set) error {
		n := set.Len()
		if n >= secure.MaxRules {
			return fmt.Errorf("policy not changed: the policy is full: it has %d rules, the limit of secure mode (delete a rule first)", n)
		}
		if position < 0 || position > n+1 {
			return fmt.Errorf("position %d is out of range: the policy has %s, so a new rule goes at 1 to %d (or give no position to append)", position, rulesCount(n), n+1)
		}
		at = set.Add(rule, position-1) + 1
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	rules, err := r.adoptClusterPolicy(p, "add", at, rule.String())
	return at, rules, err
}

// deleteClusterPolicy is DeletePolicy on a cluster store.
func (r *Router) deleteClusterPolicy(position int) ([]control.PolicyRule, error) {
	if !r.hasPolicy() {
		return nil, errNotSecure
	}
	gone := ""
	p, err := r.editClusterPolicy(func(set *policy.Set) error {
		n := set.Len()
		if position < 1 || position > n {
			if n == 0 {
				return fmt.Errorf("no rule %d: the policy has no rules", position)
			}
			return fmt.Errorf("no rule %d: the policy has %s (1 to %d)", position, rulesCount(n), n)
		}
		gone = set.List()[position-1].Text
		return set.Delete(position - 1)
	})
	if err != nil {
		return nil, err
	}
	return r.adoptClusterPolicy(p, "delete", position, gone)
}

// editClusterPolicy changes the store's policy with change, which may be
// called more than once (when another edit got in first). An error of
// change is returned as it is.
func (r *Router) editClusterPolicy(change func(*policy.Set) error) (cluster.Policy, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterPolicyTimeout)
	defer cancel()
	var changeErr error
	p, err := r.clusterLink.Store.EditPolicy(ctx, func(current []byte) ([]byte, error) {
		set, err := policy.Decode(current)
		if err != nil {
			changeErr = fmt.Errorf("policy not changed: the cluster's policy%w (fix or delete it in the store)", err)
			return nil, changeErr
		}
		if changeErr = change(set); changeErr != nil {
			return nil, changeErr
		}
		return set.Encode()
	})
	switch {
	case changeErr != nil && errors.Is(err, changeErr):
		return cluster.Policy{}, changeErr
	case err != nil:
		return cluster.Policy{}, fmt.Errorf("policy not changed: the cluster store did not take the change: %w", err)
	}
	return p, nil
}

// followClusterPolicy puts the policy of a new state of the store in
// force, if it changed (outside secure mode there is no policy to
// enforce).
func (r *Router) followClusterPolicy(state *cluster.State) {
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	p := state.Policy()
	if r.policy == nil || state.Revision() < r.policySeen || p.Revision == r.policyRevision {
		return // older than a change this router made, or no change
	}
	if p.Revision == 0 && r.policyRevision < 0 && r.policy.Len() > 0 {
		r.log.Warn("the cluster store holds no policy: the rules of the policy file are replaced by none (add them with slim policy)",
			"file", r.config.PolicyPath(), "rules", r.policy.Len())
	}
	if _, err := r.adoptLocked(p, state.Revision(), "cluster", 0, fmt.Sprintf("revision %d", p.Revision)); err != nil {
		r.log.Error("the cluster's policy is not in force here; the previous rules are", "revision", p.Revision, "err", err)
	}
}

// adoptClusterPolicy puts the policy a change of this router wrote to the
// store in force (unless the store's watch already brought a later one)
// and returns the rules in force.
func (r *Router) adoptClusterPolicy(p cluster.Policy, change string, position int, text string) ([]control.PolicyRule, error) {
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	rules, err := r.adoptLocked(p, p.Revision, change, position, text)
	if rules == nil && err != nil {
		return nil, fmt.Errorf("the cluster's policy changed (revision %d), but this router could not put it in force (it tries again at the store's next change): %w", p.Revision, err)
	}
	return rules, err
}

// adoptLocked makes the store's policy p, known at store revision seen,
// the one in force: prepared, saved to the policy file, installed, and
// the connections it denies revoked (commitPolicy). A policy that does
// not decode is refused once, and the rules in force stay. r.policyMu is
// held.
func (r *Router) adoptLocked(p cluster.Policy, seen int64, change string, position int, text string) ([]control.PolicyRule, error) {
	if seen < r.policySeen {
		return r.policyRulesLocked(), nil
	}
	next, err := policy.Decode(p.Rules)
	if err != nil {
		r.policyRevision, r.policySeen = p.Revision, seen
		return nil, fmt.Errorf("the cluster's policy%w", err)
	}
	rules := r.policyRulesLocked()
	if !next.Equal(r.policy) {
		if rules, err = r.commitPolicy(next, change, position, text); rules == nil {
			return nil, err // not in force: tried again at the next state
		}
	}
	r.policyRevision, r.policySeen = p.Revision, seen
	return rules, err
}
