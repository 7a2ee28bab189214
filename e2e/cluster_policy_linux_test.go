package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/lab"
)

// TestIntegrationEtcdPolicy: on etcd the policy is the cluster's. A rule
// added through one host's router revokes, within moments, a live
// connection that starts on another host (only that host's router can
// enforce it: the rule names one of its containers), refuses new connects
// there, and is listed and saved by every router; a rule deleted through
// the other host lets the connects through again everywhere. The time
// from the edit to the client seeing the abort is logged.
func TestIntegrationEtcdPolicy(t *testing.T) {
	requireSecureMode(t)
	l := newEtcdLabWith(t, "cpo", lab.Spec{Hosts: 2, Containers: 2}, (*lab.Lab).StartSecureRouters)
	const port = 7410
	startHoldServer(l, "h2-c1", "h1", port)
	denied := startHoldClient(l, "h1-c1", "h2-c1", port)
	allowed := startHoldClient(l, "h1-c2", "h2-c1", port)
	denied.waitFor("CONNECTED", 10*time.Second)
	allowed.waitFor("CONNECTED", 10*time.Second)

	rule := fmt.Sprintf("deny from container h1-c1 to %s/32 port %d", l.containerAddr("h2-c1"), port)
	h2 := policyClient(t, l, "h2")
	asked := monotonicNow(t)
	if _, _, err := h2.PolicyAdd(context.Background(), rule, 0); err != nil {
		t.Fatal(err)
	}
	denied.waitFor("CLIENT CLOSED", storeWait)
	reason, at := closedAt(t, denied)
	t.Logf("cluster policy: the client on h1 saw %s %v after the rule was sent to h2's router", reason, time.Duration(at-asked))
	if reason != "ECONNABORTED" && reason != "ECONNRESET" && reason != "EOF" {
		t.Errorf("revoked client saw %s, want a reset or abort", reason)
	}
	if strings.Contains(allowed.output(), "CLIENT CLOSED") {
		t.Fatalf("the allowed connection was torn down too:\n%s", allowed.output())
	}
	startHoldClient(l, "h1-c1", "h2-c1", port).waitFor("CONNECT FAILED ECONNREFUSED", 5*time.Second)

	h1 := policyClient(t, l, "h1")
	rules, err := h1.PolicyList(context.Background())
	if err != nil || len(rules) != 1 || rules[0].Rule != rule {
		t.Fatalf("h1's router lists %v (%v), want the one rule added through h2", rules, err)
	}
	if saved, err := os.ReadFile(filepath.Join(l.RouterDir("h1"), "policy.json")); err != nil || !strings.Contains(string(saved), "h1-c1") {
		t.Errorf("h1's router did not save the cluster's policy: %v\n%s", err, saved)
	}

	t.Log("the rule deleted through h1: connects pass again")
	if _, err := h1.PolicyDel(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(storeWait); ; time.Sleep(50 * time.Millisecond) {
		rules, err := h2.PolicyList(context.Background())
		if err == nil && len(rules) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h2's router still lists %v (%v) after the rule was deleted through h1", rules, err)
		}
	}
	live := startHoldClient(l, "h1-c1", "h2-c1", port)
	live.waitFor("CONNECTED", 10*time.Second)

	t.Log("h1 cut off from etcd: a rule added meanwhile reaches it, and revokes, when it is back")
	heal := l.partitionFromEtcd("h1")
	if _, _, err := h2.PolicyAdd(context.Background(), rule, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if rules, err := h1.PolicyList(context.Background()); err != nil || len(rules) != 0 {
		t.Fatalf("h1's router, cut off from etcd, lists %v (%v)", rules, err)
	}
	healed := monotonicNow(t)
	heal()
	live.waitFor("CLIENT CLOSED", storeWait)
	_, at = closedAt(t, live)
	t.Logf("cluster policy: h1's client was revoked %v after h1's partition from etcd healed", time.Duration(at-healed))
}
