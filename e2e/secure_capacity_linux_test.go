package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slimnet/slim/router/policy"
	"github.com/slimnet/slim/secure"
)

// writeLongPolicy writes host's policy file: n rules, of which the one at
// each position in deny (1-based) denies a connection, and the others
// (to addresses no container has) match nothing the test makes.
func writeLongPolicy(t *testing.T, l *testLab, host string, n int, deny map[int]string) {
	t.Helper()
	set := &policy.Set{}
	for i := 1; i <= n; i++ {
		text, ok := deny[i]
		if !ok {
			text = fmt.Sprintf("deny to %s port %d", netip.AddrFrom4([4]byte{198, 19, 200 + byte(i/250), byte(i % 250)}), 1000+i%5000)
		}
		rule, err := policy.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		set.Add(rule, -1)
	}
	if err := set.Save(filepath.Join(l.RouterDir(host), "policy.json")); err != nil {
		t.Fatal(err)
	}
}

// checkConnects runs a hold client from node to server's port and waits
// for its first word: CONNECTED or CONNECT FAILED ECONNREFUSED.
func checkConnects(t *testing.T, l *testLab, node, server string, port int, want string) {
	t.Helper()
	p := startHoldClient(l, node, server, port)
	p.waitFor(want, 10*time.Second)
	p.stop()
}

// TestIntegrationSecurePolicyCapacity: a secure router holds a policy of
// thousands of rules and enforces every one (issue 9, item 8: rules past
// the 64th were saved and listed but not enforced); a change past the
// limit is refused whole, with an error that names the limit, and changes
// nothing; the router restarts with the full policy.
func TestIntegrationSecurePolicyCapacity(t *testing.T) {
	l := newSecureLab(t, "scap")
	const port = 7406
	startHoldServer(l, "h2-c1", "h1", port)
	startHoldServer(l, "h2-c2", "h1", port)
	target := l.containerAddr("h2-c1") + "/32"
	last := secure.MaxRules - 1
	writeLongPolicy(t, l, "h1", last, map[int]string{
		1500: fmt.Sprintf("deny from container h1-c1 to %s port %d", target, port),
		last: fmt.Sprintf("deny from container h1-c2 to %s port %d", target, port),
	})
	killRouter(t, l, "h1", syscall.SIGTERM)
	restartRouter(t, l, "h1")

	checkConnects(t, l, "h1-c1", "h2-c1", port, "CONNECT FAILED ECONNREFUSED") // rule 1500
	checkConnects(t, l, "h1-c2", "h2-c1", port, "CONNECT FAILED ECONNREFUSED") // the last rule
	checkConnects(t, l, "h1-c2", "h2-c2", port, "CONNECTED")                   // no rule

	api := policyClient(t, l, "h1")
	ctx := context.Background()
	allow := fmt.Sprintf("allow from container h1-c1 to %s", target)
	if _, _, err := api.PolicyAdd(ctx, allow, 0); err != nil {
		t.Fatalf("adding rule %d of %d: %v", secure.MaxRules, secure.MaxRules, err)
	}
	_, _, err := api.PolicyAdd(ctx, allow, 1)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(secure.MaxRules)) || !strings.Contains(err.Error(), "not changed") {
		t.Errorf("a rule past the limit: %v, want an error naming the limit of %d", err, secure.MaxRules)
	}
	rules, err := api.PolicyList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != secure.MaxRules || rules[0].Rule == allow {
		t.Errorf("after the refused change the policy has %d rules, first %q; want %d, unchanged", len(rules), rules[0].Rule, secure.MaxRules)
	}
	checkConnects(t, l, "h1-c1", "h2-c1", port, "CONNECT FAILED ECONNREFUSED")

	killRouter(t, l, "h1", syscall.SIGTERM)
	restartRouter(t, l, "h1")
	checkConnects(t, l, "h1-c1", "h2-c1", port, "CONNECT FAILED ECONNREFUSED")
	if rules, err := policyClient(t, l, "h1").PolicyList(ctx); err != nil || len(rules) != secure.MaxRules {
		t.Errorf("after a restart the policy has %d rules (%v), want %d", len(rules), err, secure.MaxRules)
	}
	if rules[1499].Hits == 0 {
		t.Errorf("rule 1500 (%s) has no hits", rules[1499].Rule)
	}
}
