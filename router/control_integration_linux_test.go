package router_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
)

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestIntegrationControlAPI: the control socket is root's only, answers
// snapshots with the router's health, containers and peers, refuses bad
// requests and counts the shims' STATS messages.
func TestIntegrationControlAPI(t *testing.T) {
	l := labWithRouters(t, "topc", 2)
	path := filepath.Join(l.RouterDir("h1"), control.SocketName)
	info, err := os.Stat(path)
	if err != nil || info.Mode()&os.ModeSocket == 0 || info.Mode().Perm() != 0o600 {
		t.Fatalf("control socket %s: %v, %v; want a socket of mode 0600", path, info.Mode(), err)
	}

	// Before any STATS: no shim data, an empty policy, a connected peer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var snap control.Snapshot
	for {
		snap, err = control.Fetch(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Peers) == 1 && snap.Peers[0].Connected && !snap.Peers[0].LastDirectory.IsZero() {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("peer never shown connected with a directory: %+v", snap.Peers)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if snap.Router.Host.String() != "198.18.0.1" || snap.Router.Uptime <= 0 || len(snap.Containers) != 2 {
		t.Errorf("router health %+v, containers %+v", snap.Router, snap.Containers)
	}
	if snap.Shims.Reports != 0 || snap.Policy == nil || len(snap.Policy) != 0 {
		t.Errorf("before STATS: shims %+v, policy %v", snap.Shims, snap.Policy)
	}

	// STATS from a shim in h1-c1 (and a malformed one, refused) that took
	// 16 pool sockets, enough for the 10 setups it reports; the hello
	// after them proves the router read them.
	res := helper(t, l, "h1-c1", "statsbad", "pool", "pool", "stats", "hello")
	if res[0].Err != "" || res[1].Fds+res[2].Fds != 16 || res[3].Err != "" || res[4].Type != "HELLO_OK" {
		t.Fatalf("helper: %+v", res)
	}
	snap, err = control.Fetch(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s := snap.Shims
	if s.Reports != 1 || s.Refused != 1 || s.Fallbacks["router_unreachable"] != 2 || s.Fallbacks["pool_empty"] != 1 || s.Setups() != 10 || s.SetupBuckets[6] != 10 {
		t.Errorf("after one STATS: %+v", s)
	}

	// A malformed request gets an error and the session goes on; a
	// client that connects and never reads does not hold the router up.
	stuck, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	stuck.Write([]byte(`{"version":1,"op":"watch","interval_ms":100}` + "\n"))
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte("{nonsense\n" + `{"version":1,"op":"snapshot"}` + "\n"))
	buf := make([]byte, 1<<20)
	got := ""
	for strings.Count(got, "\n") < 2 {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading replies %q: %v", got, err)
		}
		got += string(buf[:n])
	}
	lines := strings.SplitN(got, "\n", 3)
	if !strings.Contains(lines[0], `"ok":false`) || !strings.Contains(lines[1], `"ok":true`) {
		t.Errorf("replies to a malformed and a good request:\n%s", got)
	}
}
