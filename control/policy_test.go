package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// fakePolicy keeps rules as text; "fail" in a rule makes the change stick
// but report an error, as a router does when applying fails after saving.
type fakePolicy struct {
	mu    sync.Mutex
	rules []string
}

func (f *fakePolicy) list() []PolicyRule {
	out := []PolicyRule{}
	for i, r := range f.rules {
		out = append(out, PolicyRule{Position: i + 1, Rule: r, Action: strings.Fields(r)[0], Hits: uint64(10 * (i + 1))})
	}
	return out
}

func (f *fakePolicy) ListPolicy() ([]PolicyRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.list(), nil
}

func (f *fakePolicy) AddPolicy(rule string, position int) (int, []PolicyRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !strings.HasPrefix(rule, "allow") && !strings.HasPrefix(rule, "deny") {
		return 0, nil, fmt.Errorf("rule %q: want allow or deny", rule)
	}
	if position > len(f.rules)+1 {
		return 0, nil, fmt.Errorf("position %d is out of range", position)
	}
	at := len(f.rules)
	if position > 0 {
		at = position - 1
	}
	f.rules = append(f.rules[:at], append([]string{rule}, f.rules[at:]...)...)
	if strings.Contains(rule, "fail") {
		return at + 1, f.list(), errors.New("saved but not applied")
	}
	return at + 1, f.list(), nil
}

func (f *fakePolicy) DeletePolicy(position int) ([]PolicyRule, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if position > len(f.rules) {
		return nil, fmt.Errorf("no rule %d", position)
	}
	f.rules = append(f.rules[:position-1], f.rules[position:]...)
	return f.list(), nil
}

func TestParsePolicyRequests(t *testing.T) {
	for line, want := range map[string]string{
		`{"version":1,"op":"policy_list"}`:                                 "",
		`{"version":1,"op":"policy_add","rule":"deny to 198.19.1.0/24"}`:   "",
		`{"version":1,"op":"policy_add","rule":"deny","position":3}`:       "",
		`{"version":1,"op":"policy_add"}`:                                  `policy_add needs "rule"`,
		`{"version":1,"op":"policy_add","rule":"   "}`:                     `policy_add needs "rule"`,
		`{"version":1,"op":"policy_add","rule":"deny","position":-1}`:      "positions start at 1",
		`{"version":1,"op":"policy_del","position":2}`:                     "",
		`{"version":1,"op":"policy_del"}`:                                  `policy_del needs "position"`,
		`{"version":1,"op":"policy_del","position":0}`:                     `policy_del needs "position"`,
		`{"version":1,"op":"policy_del","position":-4}`:                    `policy_del needs "position"`,
		`{"version":1,"op":"policy_del","position":"2"}`:                   "malformed request",
		`{"version":1,"op":"policy_flush"}`:                                `unknown op "policy_flush": want one of "snapshot", "watch", "policy_list", "policy_add", "policy_del"`,
		`{"version":2,"op":"policy_list"}`:                                 "version 2 is not supported",
		`{"version":1,"op":"policy_add","rule":"deny","position":1.5}`:     "malformed request",
		`{"version":1,"op":"policy_add","rule":["deny"],"position":1}`:     "malformed request",
		`{"version":1,"op":"policy_add","rule":"deny","interval_ms":-1}`:   "negative",
		`{"version":1,"op":"policy_list","rule":"ignored","position":7}`:   "",
		`{"version":1,"op":"snapshot","rule":"ignored by snapshot"}`:       "",
		`{"version":1,"op":"policy_add","rule":"allow","position":100000}`: "", // the router checks the range
		`{"version":1,"op":"policy_del","positon":2}`:                      `malformed request (want one JSON object per line, with the fields of docs/control.md): unknown field "positon"`,
		`{"version":1,"op":"policy_add","rul":"deny to 198.19.1.0/24"}`:    `unknown field "rul"`,
		`{"version":1,"op":"policy_add","rule":"deny","position":-1e9999}`: "malformed request",
		`{"version":1,"op":"policy_list"} {"version":1}`:                   "unexpected data after the JSON value",
	} {
		_, err := ParseRequest([]byte(line))
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v, want success", line, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error containing %q", line, err, want)
		}
	}
}

func TestPolicyEncoding(t *testing.T) {
	req, _ := json.Marshal(Request{Version: Version, Op: OpPolicyAdd, Rule: "deny port 5432", Position: 2})
	if got, want := string(req), `{"version":1,"op":"policy_add","rule":"deny port 5432","position":2}`; got != want {
		t.Errorf("policy_add request %s, want %s", got, want)
	}
	req, _ = json.Marshal(Request{Version: Version, Op: OpSnapshot})
	if got, want := string(req), `{"version":1,"op":"snapshot"}`; got != want {
		t.Errorf("snapshot request %s, want %s (no policy fields)", got, want)
	}
	// A policy reply always has the list, empty or not; other replies
	// have none.
	empty, _ := json.Marshal(Reply{Version: Version, OK: true, Policy: []PolicyRule{}})
	if got, want := string(empty), `{"version":1,"ok":true,"policy":[]}`; got != want {
		t.Errorf("empty policy reply %s, want %s", got, want)
	}
	full, _ := json.Marshal(Reply{Version: Version, OK: true, Position: 1,
		Policy: []PolicyRule{{Position: 1, Rule: "deny to 198.19.1.0/24", Action: "deny", Hits: 3}}})
	if got, want := string(full), `{"version":1,"ok":true,"policy":[{"position":1,"rule":"deny to 198.19.1.0/24","action":"deny","hits":3}],"position":1}`; got != want {
		t.Errorf("policy reply %s, want %s", got, want)
	}
	snap, _ := json.Marshal(Reply{Version: Version, OK: true, Snapshot: &Snapshot{}})
	var top map[string]json.RawMessage
	json.Unmarshal(snap, &top)
	if _, ok := top["policy"]; ok {
		t.Errorf("snapshot reply %s has a top-level policy", snap)
	}
	var back Reply
	if err := json.Unmarshal(full, &back); err != nil || len(back.Policy) != 1 || back.Policy[0].Hits != 3 || back.Policy[0].Action != "deny" || back.Position != 1 {
		t.Errorf("decoding %s: %+v, %v", full, back, err)
	}
}

func TestPolicyOperations(t *testing.T) {
	path, _ := serveTest(t, &Server{Source: &fakeSource{}, Policy: &fakePolicy{}})
	ctx := context.Background()
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	rules, err := c.PolicyList(ctx)
	if err != nil || rules == nil || len(rules) != 0 {
		t.Fatalf("empty policy: %#v, %v; want an empty, non-nil list", rules, err)
	}
	if pos, rules, err := c.PolicyAdd(ctx, "deny to 198.19.1.0/24", 0); err != nil || pos != 1 || len(rules) != 1 {
		t.Fatalf("append: %d %+v %v", pos, rules, err)
	}
	pos, rules, err := c.PolicyAdd(ctx, "allow from container h2-c1", 1)
	if err != nil || pos != 1 || len(rules) != 2 || rules[0].Rule != "allow from container h2-c1" || rules[1].Position != 2 || rules[1].Hits != 20 {
		t.Fatalf("insert at 1: %d %+v %v", pos, rules, err)
	}
	// Errors come back as errors, and the session goes on.
	if _, _, err := c.PolicyAdd(ctx, "permit", 0); err == nil || !strings.Contains(err.Error(), "want allow or deny") {
		t.Errorf("bad rule: %v", err)
	}
	if _, err := c.PolicyDel(ctx, 9); err == nil || err.Error() != "router: no rule 9" {
		t.Errorf("out of range: %v", err)
	}
	if _, err := c.PolicyDel(ctx, 0); err == nil || !strings.Contains(err.Error(), `policy_del needs "position"`) {
		t.Errorf("position 0: %v", err)
	}
	// A change kept despite an error carries the rules in the error.
	_, _, err = c.PolicyAdd(ctx, "deny fail", 0)
	var re *ReplyError
	if !errors.As(err, &re) || re.Text != "saved but not applied" || len(re.Policy) != 3 {
		t.Errorf("saved-but-not-applied: %#v", err)
	}
	if rules, err := c.PolicyDel(ctx, 1); err != nil || len(rules) != 2 || rules[0].Rule != "deny to 198.19.1.0/24" {
		t.Errorf("delete 1: %+v %v", rules, err)
	}
	// Snapshots still work on the same session.
	if snap, err := c.Snapshot(ctx); err != nil || snap.Router.Version != "test" {
		t.Errorf("snapshot after policy operations: %v", err)
	}
}

func TestPolicyRefusedWithoutHandler(t *testing.T) {
	path, _ := startServer(t, &fakeSource{})
	s := dialRaw(t, path)
	for _, line := range []string{
		`{"version":1,"op":"policy_list"}`,
		`{"version":1,"op":"policy_add","rule":"deny"}`,
		`{"version":1,"op":"policy_del","position":1}`,
	} {
		if r := s.ask(line); r.OK || !strings.Contains(r.Error, "does not serve policy") || r.Policy != nil {
			t.Errorf("%s: %+v", line, r)
		}
	}
}

func TestPolicyRawReplies(t *testing.T) {
	path, _ := serveTest(t, &Server{Source: &fakeSource{}, Policy: &fakePolicy{}})
	s := dialRaw(t, path)
	r := s.ask(`{"version":1,"op":"policy_list"}`)
	line, _ := json.Marshal(r)
	if !r.OK || !strings.Contains(string(line), `"policy":[]`) {
		t.Errorf("empty list reply %s", line)
	}
	r = s.ask(`{"version":1,"op":"policy_add","rule":"deny port 5432","position":1}`)
	if !r.OK || r.Position != 1 || len(r.Policy) != 1 || r.Policy[0].Action != "deny" {
		t.Errorf("add reply %+v", r)
	}
}
