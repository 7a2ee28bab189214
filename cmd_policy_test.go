package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slimnet/slim/control"
)

func TestPolicyArgumentErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"policy"}, "want a subcommand"},
		{[]string{"policy", "flush"}, `unknown policy subcommand "flush"`},
		{[]string{"policy", "add"}, "add needs a RULE"},
		{[]string{"policy", "add", "permit", "to", "198.19.1.0/24"}, "want allow or deny"},
		{[]string{"policy", "add", "deny", "to", "198.19.1.3/24"}, "did you mean 198.19.1.0/24"},
		{[]string{"policy", "add", "deny", "port", "5432", "--at", "-1"}, "--at -1: positions start at 1"},
		{[]string{"policy", "add", "deny", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"policy", "add", "--at", "0", "deny"}, "--at 0: positions start at 1"},
		{[]string{"policy", "add", "--at", "x", "deny"}, "invalid value"},
		{[]string{"policy", "add", "deny", "port", "-1"}, `port "-1": want a port 1-65535 or a range such as 8000-8100`},
		{[]string{"policy", "add", "deny", "port", "-1", "--json"}, "flag provided but not defined: -json"},
		{[]string{"policy", "add", "--at", "-2", "deny", "port", "22"}, "--at -2: positions start at 1"},
		{[]string{"policy", "add", "deny", "to", "-198.19.1.0/24"}, `"-198.19.1.0/24" is not an IPv4 address or CIDR`},
		{[]string{"policy", "del", "-1"}, `"-1" is not a rule position`},
		{[]string{"policy", "list", "-1"}, `unexpected argument "-1"`},
		{[]string{"policy", "del"}, "del needs one argument"},
		{[]string{"policy", "del", "1", "2"}, "del needs one argument"},
		{[]string{"policy", "del", "first"}, `"first" is not a rule position`},
		{[]string{"policy", "del", "0"}, `"0" is not a rule position`},
		{[]string{"policy", "list", "all"}, `unexpected argument "all"`},
		{[]string{"policy", "list", "--control", "/a", "--router-dir", "/b"}, "give one of --control, --router-dir and --lab"},
	} {
		code, _, stderr := runCapturingStdout(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "Run 'slim policy --help'") {
			t.Errorf("slim %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}

func TestPolicyHelp(t *testing.T) {
	for _, args := range [][]string{{"policy", "--help"}, {"policy", "add", "--help"}, {"policy", "del", "-h"}, {"policy", "list", "--help"}, {"help", "policy"}} {
		code, stdout, stderr := runCapturingStdout(t, args...)
		if code != 0 || !strings.Contains(stdout, "Usage: slim policy") {
			t.Errorf("slim %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestPolicyUnreachableRouter: no router, one line naming the socket.
func TestPolicyUnreachableRouter(t *testing.T) {
	stale := filepath.Join(t.TempDir(), control.SocketName)
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // the socket file stays, nobody serves it
	code, _, stderr := runCapturingStdout(t, "policy", "list", "--control", stale)
	if code != 1 || !strings.Contains(stderr, "cannot reach the router: nothing serves "+stale) {
		t.Errorf("stale socket: exit %d, stderr %q", code, stderr)
	}

	for _, args := range [][]string{
		{"policy", "list", "--control", "/nonexistent/control.sock"},
		{"policy", "add", "--control", "/nonexistent/control.sock", "deny", "port", "22"},
		{"policy", "del", "--control", "/nonexistent/control.sock", "1"},
	} {
		code, _, stderr := runCapturingStdout(t, args...)
		if code != 1 || !strings.Contains(stderr, "cannot reach the router: /nonexistent/control.sock does not exist") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("slim %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
	}
}

// fakeRouterPolicy is a router's policy as far as slim policy can tell.
type fakeRouterPolicy struct {
	mu    sync.Mutex
	rules []control.PolicyRule
	err   error
}

func (f *fakeRouterPolicy) ListPolicy() ([]control.PolicyRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]control.PolicyRule{}, f.rules...), f.err
}

func (f *fakeRouterPolicy) AddPolicy(rule string, position int) (int, []control.PolicyRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, nil, f.err
	}
	at := len(f.rules)
	if position > 0 {
		at = position - 1
	}
	f.rules = append(f.rules[:at], append([]control.PolicyRule{{Rule: rule, Action: strings.Fields(rule)[0], Hits: 7}}, f.rules[at:]...)...)
	for i := range f.rules {
		f.rules[i].Position = i + 1
	}
	return at + 1, append([]control.PolicyRule{}, f.rules...), nil
}

func (f *fakeRouterPolicy) DeletePolicy(position int) ([]control.PolicyRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.rules = append(f.rules[:position-1], f.rules[position:]...)
	for i := range f.rules {
		f.rules[i].Position = i + 1
	}
	return append([]control.PolicyRule{}, f.rules...), nil
}

func serveFakePolicy(t *testing.T, p *fakeRouterPolicy) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), control.SocketName)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &control.Server{Source: control.SourceFunc(func() control.Snapshot { return control.Snapshot{} }), Policy: p}
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ctx, l) }()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

func TestPolicyCommandsTalkToTheRouter(t *testing.T) {
	p := &fakeRouterPolicy{}
	path := serveFakePolicy(t, p)

	code, stdout, stderr := runCapturingStdout(t, "policy", "list", "--control", path)
	if code != 0 || stdout != "no rules: every connection is allowed\n" {
		t.Errorf("empty list: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCapturingStdout(t, "policy", "add", "--control", path, "deny", "from", "198.19.2.0/24", "to", "198.19.1.0/24", "port", "5432")
	if code != 0 || !strings.HasPrefix(stdout, "added rule 1\n") {
		t.Errorf("add: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Flags may follow the rule; the rule may be one argument or many.
	code, stdout, stderr = runCapturingStdout(t, "policy", "add", "allow from container h2-c1", "--at", "1", "--control", path)
	if rules, _ := p.ListPolicy(); code != 0 || !strings.HasPrefix(stdout, "added rule 1\n") || rules[0].Rule != "allow from container h2-c1" {
		t.Errorf("add --at 1: exit %d, stdout %q, stderr %q, rules %+v", code, stdout, stderr, rules)
	}
	code, stdout, _ = runCapturingStdout(t, "policy", "list", "--control", path)
	want := "" +
		"POS  RULE                                                HITS\n" +
		"  1  allow from container h2-c1                             7\n" +
		"  2  deny from 198.19.2.0/24 to 198.19.1.0/24 port 5432     7\n"
	if code != 0 || stdout != want {
		t.Errorf("list: exit %d, stdout\n%s\nwant\n%s", code, stdout, want)
	}
	code, stdout, _ = runCapturingStdout(t, "policy", "list", "--json", "--control", path)
	if code != 0 || !strings.Contains(stdout, `"rule": "allow from container h2-c1"`) || !strings.Contains(stdout, `"position": 2`) {
		t.Errorf("list --json: exit %d, stdout %s", code, stdout)
	}
	code, stdout, stderr = runCapturingStdout(t, "policy", "del", "1", "--control", path)
	if rules, _ := p.ListPolicy(); code != 0 || !strings.HasPrefix(stdout, "deleted rule 1\n") || len(rules) != 1 {
		t.Errorf("del: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// The router's refusal is the error.
	p.mu.Lock()
	p.err = errors.New("policy needs secure mode: start the router with --secure")
	p.mu.Unlock()
	code, _, stderr = runCapturingStdout(t, "policy", "list", "--control", path)
	if code != 1 || stderr != "slim policy: router: policy needs secure mode: start the router with --secure\n" {
		t.Errorf("refused: exit %d, stderr %q", code, stderr)
	}
}

func TestWritePolicyEmptyJSON(t *testing.T) {
	var b bytes.Buffer
	writePolicy(&b, nil)
	if b.String() != "no rules: every connection is allowed\n" {
		t.Errorf("%q", b.String())
	}
	path := serveFakePolicy(t, &fakeRouterPolicy{})
	code, stdout, _ := runCapturingStdout(t, "policy", "list", "--json", "--control", path)
	if code != 0 || stdout != "[]\n" {
		t.Errorf("list --json of no rules: exit %d, %q", code, stdout)
	}
}
