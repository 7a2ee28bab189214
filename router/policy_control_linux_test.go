package router

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/policy"
)

// policyTestConfig is a one-host router configuration in dir, with no
// containers: enough for the policy and the control API.
func policyTestConfig(t *testing.T, dir string, secure bool) Config {
	t.Helper()
	c := Config{
		Dir: dir, Overlay: "198.19.0.0/16", HostBits: 24,
		Hosts:  []HostConfig{{Underlay: "127.0.0.1", Subnet: "198.19.1.0/24"}},
		Secure: secure,
	}
	if secure {
		key := filepath.Join(t.TempDir(), "cluster.key")
		secret := make([]byte, 32)
		rand.Read(secret)
		if err := os.WriteFile(key, secret, 0o600); err != nil {
			t.Fatal(err)
		}
		c.KeyFile = key
	}
	return c
}

// newPolicyTestRouter builds a router as New does, without the kernel
// (no sockets, sysctls or eBPF; policyChanged has nothing to apply), and
// loads its policy as New does.
func newPolicyTestRouter(t *testing.T, config Config) (*Router, error) {
	t.Helper()
	plan, err := config.Plan()
	if err != nil {
		t.Fatal(err)
	}
	r := newRouter(config, plan, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.version = "test"
	return r, r.loadPolicy()
}

// servePolicyTest serves r's control API (as serveControl does) on
// DIR/control.sock and returns a client.
func servePolicyTest(t *testing.T, r *Router) *control.Client {
	t.Helper()
	path := filepath.Join(t.TempDir(), control.SocketName)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &control.Server{Source: control.SourceFunc(r.Snapshot), Policy: policyAPI{r}, Log: r.log}
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ctx, l) }()
	c, err := control.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); cancel(); <-done })
	return c
}

func ruleTexts(rules []control.PolicyRule) string {
	texts := make([]string, len(rules))
	for i, r := range rules {
		texts[i] = fmt.Sprintf("%d:%s", r.Position, r.Rule)
	}
	return strings.Join(texts, " | ")
}

func TestPolicyControlAddDeleteList(t *testing.T) {
	dir := t.TempDir()
	config := policyTestConfig(t, dir, true)
	r, err := newPolicyTestRouter(t, config)
	if err != nil {
		t.Fatal(err)
	}
	c := servePolicyTest(t, r)
	ctx := context.Background()

	rules, err := c.PolicyList(ctx)
	if err != nil || rules == nil || len(rules) != 0 {
		t.Fatalf("a new policy: %#v, %v; want no rules", rules, err)
	}
	if _, err := os.Stat(config.PolicyPath()); !os.IsNotExist(err) {
		t.Errorf("listing wrote %s (%v)", config.PolicyPath(), err)
	}

	const db = "deny from 198.19.2.0/24 to 198.19.1.0/24 port 5432"
	if pos, rules, err := c.PolicyAdd(ctx, db, 0); err != nil || pos != 1 || ruleTexts(rules) != "1:"+db {
		t.Fatalf("append to an empty policy: %d, %s, %v", pos, ruleTexts(rules), err)
	}
	// Text is normalized: a bare address is a /32, words are lower case.
	pos, rules, err := c.PolicyAdd(ctx, "ALLOW from container h2-c1 to 198.19.1.3 port 5432", 1)
	if err != nil || pos != 1 {
		t.Fatalf("insert at 1: %d, %v", pos, err)
	}
	const front = "allow from container h2-c1 to 198.19.1.3/32 port 5432"
	if got, want := ruleTexts(rules), "1:"+front+" | 2:"+db; got != want {
		t.Errorf("after insert at 1: %s, want %s", got, want)
	}
	if rules[0].Action != "allow" || rules[1].Action != "deny" {
		t.Errorf("actions %q %q", rules[0].Action, rules[1].Action)
	}
	// Position len+1 appends.
	if pos, rules, err := c.PolicyAdd(ctx, "deny to 198.19.3.0/24", 3); err != nil || pos != 3 || len(rules) != 3 {
		t.Fatalf("insert at 3 of 2: %d, %s, %v", pos, ruleTexts(rules), err)
	}

	// Errors: the parse error, the range, and nothing changes.
	for _, bad := range []struct {
		rule     string
		position int
		want     string
	}{
		{"permit to 198.19.0.0/16", 0, `router: rule "permit to 198.19.0.0/16": starts with "permit", want allow or deny`},
		{"deny to 198.19.1.3/24", 0, "did you mean 198.19.1.0/24"},
		{"deny port 5432", 5, "router: position 5 is out of range: the policy has 3 rules, so a new rule goes at 1 to 4 (or give no position to append)"},
	} {
		if _, _, err := c.PolicyAdd(ctx, bad.rule, bad.position); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("add %q at %d: %v, want an error containing %q", bad.rule, bad.position, err, bad.want)
		}
	}
	if _, err := c.PolicyDel(ctx, 4); err == nil || err.Error() != "router: no rule 4: the policy has 3 rules (1 to 3)" {
		t.Errorf("delete 4 of 3: %v", err)
	}

	// Without the kernel's programs (no secure mode loaded) hits read 0.
	rules, err = c.PolicyList(ctx)
	if err != nil || len(rules) != 3 || rules[1].Hits != 0 {
		t.Errorf("rules %+v, %v", rules, err)
	}
	// The snapshot shows the same.
	snap, err := c.Snapshot(ctx)
	if err != nil || len(snap.Policy) != 3 || snap.Policy[1] != rules[1] {
		t.Errorf("snapshot policy %+v, %v; want %+v", snap.Policy, err, rules)
	}

	rules, err = c.PolicyDel(ctx, 1)
	if got, want := ruleTexts(rules), "1:"+db+" | 2:deny to 198.19.3.0/24"; err != nil || got != want {
		t.Errorf("after deleting 1: %s, %v; want %s", got, err, want)
	}

	// Every change was saved before the reply.
	saved, err := policy.Load(config.PolicyPath())
	if err != nil {
		t.Fatal(err)
	}
	if got := saved.List(); len(got) != 2 || got[0].Text != db || got[1].Text != "deny to 198.19.3.0/24" {
		t.Errorf("saved policy %+v", got)
	}

	// A restarted router has the rules (and counts hits afresh).
	r2, err := newPolicyTestRouter(t, config)
	if err != nil {
		t.Fatal(err)
	}
	c2 := servePolicyTest(t, r2)
	rules, err = c2.PolicyList(ctx)
	if got, want := ruleTexts(rules), "1:"+db+" | 2:deny to 198.19.3.0/24"; err != nil || got != want || rules[0].Hits != 0 {
		t.Errorf("after a restart: %s (hits %d), %v; want %s", got, rules[0].Hits, err, want)
	}
	if _, err := c2.PolicyDel(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if saved, err := policy.Load(config.PolicyPath()); err != nil || saved.Len() != 1 {
		t.Errorf("after a change by the restarted router the file has %v rules (%v)", saved, err)
	}
}

func TestPolicyNeedsSecureMode(t *testing.T) {
	dir := t.TempDir()
	config := policyTestConfig(t, dir, false)
	// A policy file, even a corrupt one, means nothing outside secure mode.
	os.WriteFile(config.PolicyPath(), []byte("{garbage"), 0o600)
	r, err := newPolicyTestRouter(t, config)
	if err != nil {
		t.Fatalf("a router that is not secure read its policy file: %v", err)
	}
	c := servePolicyTest(t, r)
	ctx := context.Background()
	const want = "router: policy needs secure mode: start the router with --secure"
	_, err1 := c.PolicyList(ctx)
	_, _, err2 := c.PolicyAdd(ctx, "deny port 5432", 0)
	_, _, err3 := c.PolicyAdd(ctx, "not even a rule", 0)
	_, err4 := c.PolicyDel(ctx, 1)
	for i, err := range []error{err1, err2, err3, err4} {
		if err == nil || err.Error() != want {
			t.Errorf("operation %d: %v, want %q", i+1, err, want)
		}
	}
	if data, _ := os.ReadFile(config.PolicyPath()); string(data) != "{garbage" {
		t.Errorf("the policy file changed: %q", data)
	}
	snap, err := c.Snapshot(ctx)
	if err != nil || snap.Policy == nil || len(snap.Policy) != 0 {
		t.Errorf("snapshot policy %#v, %v; want an empty list", snap.Policy, err)
	}
}

func TestPolicyNotSavedMeansNotChanged(t *testing.T) {
	config := policyTestConfig(t, t.TempDir(), true)
	r, err := newPolicyTestRouter(t, config)
	if err != nil {
		t.Fatal(err)
	}
	c := servePolicyTest(t, r)
	ctx := context.Background()
	if _, _, err := c.PolicyAdd(ctx, "deny port 5432", 0); err != nil {
		t.Fatal(err)
	}
	// A directory in the file's place: the rename of the new file fails.
	os.Remove(config.PolicyPath())
	if err := os.MkdirAll(filepath.Join(config.PolicyPath(), "blocker"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PolicyAdd(ctx, "deny port 22", 1); err == nil || !strings.Contains(err.Error(), "policy not changed") {
		t.Errorf("add that cannot be saved: %v", err)
	}
	if _, err := c.PolicyDel(ctx, 1); err == nil || !strings.Contains(err.Error(), "policy not changed") {
		t.Errorf("delete that cannot be saved: %v", err)
	}
	rules, err := c.PolicyList(ctx)
	if err != nil || ruleTexts(rules) != "1:deny port 5432" {
		t.Errorf("after failed saves: %s, %v; want the rules as they were", ruleTexts(rules), err)
	}
}

func TestPolicyConcurrentChanges(t *testing.T) {
	config := policyTestConfig(t, t.TempDir(), true)
	r, err := newPolicyTestRouter(t, config)
	if err != nil {
		t.Fatal(err)
	}
	api := policyAPI{r}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := api.AddPolicy(fmt.Sprintf("deny port %d", 1000+i), 1); err != nil {
				t.Error(err)
			}
			r.Snapshot()
		}()
	}
	wg.Wait()
	saved, err := policy.Load(config.PolicyPath())
	if err != nil || saved.Len() != 20 {
		t.Fatalf("saved %v rules (%v), want 20", saved, err)
	}
	rules, _ := api.ListPolicy()
	for i, l := range saved.List() {
		if rules[i].Rule != l.Text {
			t.Errorf("rule %d: in force %q, saved %q", i+1, rules[i].Rule, l.Text)
		}
	}
}

// TestNewRefusesCorruptPolicy: New loads the policy file of a secure
// router, and a corrupt one stops it, naming the file.
func TestNewRefusesCorruptPolicy(t *testing.T) {
	config := policyTestConfig(t, t.TempDir(), true)
	if err := os.WriteFile(config.PolicyPath(), []byte(`{"version":1,"rules":[{"action":"maybe"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(config, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), config.PolicyPath()) {
		t.Fatalf("New with a corrupt policy file: %v, want an error naming %s", err, config.PolicyPath())
	}
	if err := os.WriteFile(config.PolicyPath(), []byte(`{"version":1,`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newPolicyTestRouter(t, config); err == nil || !strings.Contains(err.Error(), "policy file "+config.PolicyPath()+" is corrupt") {
		t.Errorf("truncated policy file: %v", err)
	}
}
