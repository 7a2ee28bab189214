package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
)

// TestStatusSaysInsecurePeers: slim status says loudly when a router's
// peer channel is not authenticated, and says nothing of it otherwise.
func TestStatusSaysInsecurePeers(t *testing.T) {
	for _, insecure := range []bool{true, false} {
		var out bytes.Buffer
		snap := control.Snapshot{Router: control.RouterHealth{InsecurePeers: insecure}}
		if err := writeStatus(&out, snap); err != nil {
			t.Fatal(err)
		}
		said := strings.Contains(out.String(), "INSECURE the directory exchange with peer routers is not authenticated")
		if said != insecure {
			t.Errorf("insecure_peers %v: status says %q", insecure, out.String())
		}
	}
}

// TestStatusShowsStoreHealth: a router on etcd shows the store's health
// (connected or not, its last write, watch and renewal, what waits to be
// published, the last error); a router without a store shows no line.
func TestStatusShowsStoreHealth(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ago := func(s int) time.Time { return now.Add(-time.Duration(s) * time.Second) }
	store := &control.StoreHealth{
		Backend: "etcd", Joined: false, Connected: false, Since: ago(40), LastError: "context deadline exceeded", ErrorAt: ago(2),
		Revision: 42, LastWrite: ago(45), LastWatch: ago(41), LastRenewal: ago(43),
		Unpublished: true, Pending: 3, PendingSince: ago(30), Members: 4, Listeners: 7,
	}
	var out bytes.Buffer
	if err := writeStatus(&out, control.Snapshot{Time: now, Router: control.RouterHealth{Store: store}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"store    etcd DISCONNECTED since 40s ago, revision 42, 4 members, 7 listeners; last write 45s ago, watch 41s ago, lease renewal 43s ago\n",
		"this host's listeners are not published yet: 3 lists waiting since 30s ago (retrying)\n",
		"last error 2s ago: context deadline exceeded\n",
		"NOT JOINED: serving the cluster state saved at the last run",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := writeStatus(&out, control.Snapshot{Time: now}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "store") {
		t.Errorf("a router without a store shows one:\n%s", out.String())
	}
}
