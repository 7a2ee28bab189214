package router

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/router/policy"
)

// policyStore is a cluster store that holds only a policy document and
// takes edits as etcd does (a revision per write), or refuses them all
// (down).
type policyStore struct {
	cluster.Store // the rest is not used
	mu            sync.Mutex
	doc           []byte
	revision      int64
	down          bool
}

func (s *policyStore) EditPolicy(ctx context.Context, edit func([]byte) ([]byte, error)) (cluster.Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return cluster.Policy{}, context.DeadlineExceeded
	}
	next, err := edit(s.doc)
	if err != nil {
		return cluster.Policy{}, err
	}
	s.revision++
	s.doc = next
	return cluster.Policy{Rules: next, Revision: s.revision}, nil
}

// policyState is a state of the store at revision rev whose policy is
// doc, written at revision written (0: no policy).
func policyState(rev, written int64, doc []byte) *cluster.State {
	b := cluster.NewState().Edit()
	b.SetRevision(rev)
	b.SetPolicy(cluster.Policy{Rules: doc, Revision: written})
	return b.Done()
}

func encodeRules(t *testing.T, texts ...string) []byte {
	t.Helper()
	s := &policy.Set{}
	for _, text := range texts {
		r, err := policy.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		s.Add(r, -1)
	}
	data, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestClusterPolicyFollowsTheStore: on a cluster store a secure router's
// policy changes go to the store, and the router enforces what the store
// holds: a change it made is in force (and saved) when it answers; a state
// older than that change does not bring the previous rules back; a later
// change made elsewhere is put in force; a document that does not decode
// leaves the rules in force; a policy deleted from the store is none. With
// the store down a change fails and changes nothing.
func TestClusterPolicyFollowsTheStore(t *testing.T) {
	r, err := newPolicyTestRouter(t, policyTestConfig(t, t.TempDir(), true))
	if err != nil {
		t.Fatal(err)
	}
	store := &policyStore{}
	r.clusterLink = &ClusterLink{Store: store}
	api := policyAPI{r}
	inForce := func() string {
		rules, err := api.ListPolicy()
		if err != nil {
			t.Fatal(err)
		}
		return ruleTexts(rules)
	}

	if _, _, err := api.AddPolicy("deny to 198.19.2.0/24", 0); err != nil {
		t.Fatal(err)
	}
	if got := inForce(); got != "1:deny to 198.19.2.0/24" {
		t.Fatalf("after an add through this router: %s", got)
	}
	if !strings.Contains(string(store.doc), "198.19.2.0/24") {
		t.Fatalf("the store holds %s", store.doc)
	}
	if saved, err := policy.Load(r.config.PolicyPath()); err != nil || saved.Len() != 1 {
		t.Fatalf("the policy file holds %v rules (%v), want the one in force", saved.Len(), err)
	}

	r.followClusterPolicy(policyState(0, 0, nil)) // read before the change
	if got := inForce(); got != "1:deny to 198.19.2.0/24" {
		t.Fatalf("an older state brought the previous rules back: %s", got)
	}

	other := encodeRules(t, "allow from container web", "deny to 198.19.3.0/24 port 22")
	r.followClusterPolicy(policyState(5, 4, other))
	if got := inForce(); got != "1:allow from container web | 2:deny to 198.19.3.0/24 port 22" {
		t.Fatalf("after a change made elsewhere: %s", got)
	}

	r.followClusterPolicy(policyState(6, 6, []byte(`{"version": 1, "rules": [{"action": "deny", "too": "198.19.1.0/24"}]}`)))
	if got := inForce(); got != "1:allow from container web | 2:deny to 198.19.3.0/24 port 22" {
		t.Fatalf("a document that does not decode changed the rules: %s", got)
	}

	store.down = true
	if _, _, err := api.AddPolicy("deny", 0); err == nil || !strings.Contains(err.Error(), "policy not changed: the cluster store did not take the change") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an add with the store down: %v", err)
	}
	if _, err := api.DeletePolicy(1); err == nil {
		t.Fatal("a delete with the store down succeeded")
	}
	if got := inForce(); got != "1:allow from container web | 2:deny to 198.19.3.0/24 port 22" {
		t.Fatalf("a change the store did not take changed the rules: %s", got)
	}

	r.followClusterPolicy(policyState(7, 0, nil))
	if got := inForce(); got != "" {
		t.Fatalf("the policy deleted from the store is still in force: %s", got)
	}
}

// TestClusterPolicyChecksTheStoreRules: positions are checked against the
// store's rules, not the router's copy.
func TestClusterPolicyChecksTheStoreRules(t *testing.T) {
	r, err := newPolicyTestRouter(t, policyTestConfig(t, t.TempDir(), true))
	if err != nil {
		t.Fatal(err)
	}
	store := &policyStore{doc: encodeRules(t, "deny to 198.19.2.0/24", "deny to 198.19.3.0/24"), revision: 3}
	r.clusterLink = &ClusterLink{Store: store}
	api := policyAPI{r}
	if _, err := api.DeletePolicy(3); err == nil || !strings.Contains(err.Error(), "no rule 3: the policy has 2 rules (1 to 2)") {
		t.Fatalf("delete of rule 3 of the store's 2: %v", err)
	}
	at, rules, err := api.AddPolicy("allow to 198.19.2.2/32", 1)
	if err != nil || at != 1 || ruleTexts(rules) != "1:allow to 198.19.2.2/32 | 2:deny to 198.19.2.0/24 | 3:deny to 198.19.3.0/24" {
		t.Fatalf("add at 1 of the store's rules: %d %s %v", at, ruleTexts(rules), err)
	}
}
