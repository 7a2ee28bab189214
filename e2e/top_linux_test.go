package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"

	"github.com/slimnet/slim/control"
)

// TestIntegrationTop runs traffic between containers on two hosts under
// slim exec and watches it through the control API, slim top --json and
// --once, and the dashboard in a real terminal (tmux).
func TestIntegrationTop(t *testing.T) {
	l := newLab(t, "top")
	const port = 6300
	server := l.containerAddr("h1-c1")
	dst := fmt.Sprintf("%s:%d", server, port)
	srv := l.start("h1-c1", true, "iperf3", "--forceflush", "-s", "-1", "-B", server, "-p", fmt.Sprint(port))
	srv.waitFor("Server listening", 10*time.Second)
	l.waitForDirectory("h2", server, port, 10*time.Second)
	client := l.start("h2-c1", true, "iperf3", "-c", server, "-p", fmt.Sprint(port), "-t", "12", "-b", "100M", "-B", l.containerAddr("h2-c1"))

	h1 := filepath.Join(l.RouterDir("h1"), control.SocketName)
	h2 := filepath.Join(l.RouterDir("h2"), control.SocketName)
	clientSide := func(s control.Snapshot) (control.Connection, bool) {
		best, found := control.Connection{}, false
		for _, c := range s.Connections {
			if c.Container == "h2-c1" && c.Role == control.RoleClient && c.Peer.String() == dst && c.BytesOut >= best.BytesOut {
				best, found = c, true
			}
		}
		return best, found
	}

	// slim top --json (the API's snapshot) on h2: the client's data
	// connection, with a growing byte counter.
	var first control.Connection
	deadline := time.Now().Add(8 * time.Second)
	for {
		if c, ok := clientSide(topJSON(t, h2)); ok && c.BytesOut > 0 {
			first = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slim top --json on h2 never showed h2-c1 → %s with bytes out:\n%s", dst, client.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // the router sweeps every second
	second, ok := clientSide(topJSON(t, h2))
	if !ok || second.BytesOut <= first.BytesOut || second.RateOut <= 0 || second.RTT <= 0 {
		t.Errorf("h2-c1's connection did not grow: first %+v, then %+v", first, second)
	}
	if !strings.HasPrefix(second.Local.String(), l.containerAddr("h2-c1")+":") || second.PeerHost.Addr().String() != "198.18.0.1" {
		t.Errorf("client connection addresses: local %s, peer host %s", second.Local, second.PeerHost)
	}

	// The API on h1: the server side, bytes in, and the client's overlay
	// address, which h2's router told h1's over the peer channel (CLIENTS).
	clientHost := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.2"), second.Local.Port())
	serverSide := func(s control.Snapshot) (control.Connection, bool) {
		for _, c := range s.Connections {
			if c.Container == "h1-c1" && c.Role == control.RoleServer && c.Local.String() == dst && c.PeerHost == clientHost {
				return c, true
			}
		}
		return control.Connection{}, false
	}
	var snap control.Snapshot
	for deadline := time.Now().Add(5 * time.Second); ; {
		var err error
		if snap, err = control.Fetch(context.Background(), h1); err != nil {
			t.Fatal(err)
		}
		if c, ok := serverSide(snap); ok && c.PeerKnown() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h1's server side of %s from %s never showed the client's overlay address %s: %+v",
				dst, clientHost, second.Local, snap.Connections)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if c, _ := serverSide(snap); c.Peer != second.Local || c.BytesIn == 0 || c.PeerContainer != "" {
		t.Errorf("h1's server side of %s: %+v, want peer %s (h2-c1) and bytes in", dst, c, second.Local)
	}
	for _, c := range snap.Connections {
		if c.Role == control.RoleServer && c.Local.String() == dst && c.Peer.Addr().String() != l.containerAddr("h2-c1") {
			t.Errorf("h1's server side of %s from %s: peer %v, want h2-c1's address", dst, c.PeerHost, c.Peer)
		}
	}

	// slim top --once: the table shows the connection, and the shims'
	// STATS the setup times.
	once := runSlim(t, "top", "--once", "--control", h2, "--width", "100")
	if !strings.Contains(once, "h2-c1") || !strings.Contains(once, dst) || !strings.Contains(once, "setup p50 ≤") {
		t.Errorf("slim top --once:\n%s", once)
	}
	if status := runSlim(t, "status", "--control", h1); !strings.Contains(status, "listener h1-c1 "+dst) {
		t.Errorf("slim status:\n%s", status)
	}

	t.Run("tmux", func(t *testing.T) { topInTmux(t, h2, dst) })

	if err := client.wait(30 * time.Second); err != nil {
		t.Fatalf("iperf3 client: %v\n%s", err, client.output())
	}
}

// topInTmux runs the dashboard in a 100×30 tmux terminal, checks the screen
// and quits with q.
func topInTmux(t *testing.T, controlPath, dst string) {
	testenv.Tools(t, "tmux")
	server := fmt.Sprintf("slimtop-test-%d", time.Now().UnixNano())
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", server}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { tmux("kill-server") })
	if out, err := tmux("new-session", "-d", "-s", "top", "-x", "100", "-y", "30", slimPath, "top", "--control", controlPath); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	var screen string
	for deadline := time.Now().Add(10 * time.Second); ; {
		screen, _ = tmux("capture-pane", "-p", "-t", "top")
		if strings.Contains(screen, dst) && strings.Contains(screen, "? help") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard never showed %s:\n%s", dst, screen)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("slim top in a 100×30 terminal:\n%s", screen)
	if lines := strings.Split(strings.TrimRight(screen, "\n"), "\n"); len(lines) > 30 {
		t.Errorf("screen has %d lines", len(lines))
	}
	tmux("send-keys", "-t", "top", "?")
	time.Sleep(300 * time.Millisecond)
	if help, _ := tmux("capture-pane", "-p", "-t", "top"); !strings.Contains(help, "KEYS") {
		t.Errorf("? did not show the help:\n%s", help)
	}
	tmux("send-keys", "-t", "top", "q")
	for deadline := time.Now().Add(5 * time.Second); ; {
		if _, err := tmux("has-session", "-t", "top"); err != nil {
			return // slim top exited, and its session with it
		}
		if time.Now().After(deadline) {
			screen, _ = tmux("capture-pane", "-p", "-t", "top")
			t.Fatalf("slim top still runs 5 s after q:\n%s", screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func topJSON(t *testing.T, controlPath string) control.Snapshot {
	t.Helper()
	var s control.Snapshot
	out := runSlim(t, "top", "--json", "--control", controlPath)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("slim top --json: %v\n%s", err, out)
	}
	return s
}

func runSlim(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(slimPath, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("slim %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}
