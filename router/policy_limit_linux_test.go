package router

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/slimnet/slim/router/policy"
	"github.com/slimnet/slim/secure"
)

// savePolicyOf writes a policy file of n distinct rules.
func savePolicyOf(t *testing.T, path string, n int) {
	t.Helper()
	set := &policy.Set{}
	for i := range n {
		rule, err := policy.Parse(fmt.Sprintf("deny to 198.19.%d.%d port %d", 100+i/250, i%250, 1+i%60000))
		if err != nil {
			t.Fatal(err)
		}
		set.Add(rule, -1)
	}
	if err := set.Save(path); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyLimitRefusesTheWholeChange: a policy at secure mode's limit
// takes no more rules; the refusal names the limit and changes nothing,
// neither the file nor the rules in force. (Issue 9, item 8: rules past the
// limit were saved and listed, but the kernel took none of the change.)
func TestPolicyLimitRefusesTheWholeChange(t *testing.T) {
	config := policyTestConfig(t, t.TempDir(), true)
	savePolicyOf(t, config.PolicyPath(), secure.MaxRules)
	before, err := os.ReadFile(config.PolicyPath())
	if err != nil {
		t.Fatal(err)
	}
	r, err := newPolicyTestRouter(t, config)
	if err != nil {
		t.Fatalf("a policy of %d rules, the limit: %v", secure.MaxRules, err)
	}
	c := servePolicyTest(t, r)
	ctx := context.Background()
	for _, position := range []int{0, 1} {
		_, _, err := c.PolicyAdd(ctx, "deny port 5432", position)
		if err == nil || !strings.Contains(err.Error(), "policy not changed") || !strings.Contains(err.Error(), fmt.Sprint(secure.MaxRules)) {
			t.Errorf("add at %d past the limit: %v, want a refusal naming the limit of %d", position, err, secure.MaxRules)
		}
	}
	if after, _ := os.ReadFile(config.PolicyPath()); !bytes.Equal(before, after) {
		t.Error("a refused change rewrote the policy file")
	}
	rules, err := c.PolicyList(ctx)
	if err != nil || len(rules) != secure.MaxRules || rules[0].Rule == "deny port 5432" {
		t.Errorf("after refused changes: %d rules, %v; want the %d as they were", len(rules), err, secure.MaxRules)
	}
	// Deleting one makes room again.
	if _, err := c.PolicyDel(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PolicyAdd(ctx, "deny port 5432", 1); err != nil {
		t.Errorf("add after a delete at the limit: %v", err)
	}
}

// TestNewRefusesPolicyOverLimit: a policy file longer than secure mode
// holds (edited by hand) stops the router before it touches the kernel,
// naming the file and the limit.
func TestNewRefusesPolicyOverLimit(t *testing.T) {
	config := policyTestConfig(t, t.TempDir(), true)
	savePolicyOf(t, config.PolicyPath(), secure.MaxRules+1)
	_, err := New(config, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), config.PolicyPath()) || !strings.Contains(err.Error(), fmt.Sprint(secure.MaxRules)) {
		t.Fatalf("New with %d rules: %v, want an error naming %s and the limit %d", secure.MaxRules+1, err, config.PolicyPath(), secure.MaxRules)
	}
}
