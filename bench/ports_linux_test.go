package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/lab"
)

func TestParsePortRange(t *testing.T) {
	low, high, err := parsePortRange([]byte("10000\t65000\n"))
	if err != nil || low != 10000 || high != 65000 {
		t.Errorf("parsePortRange = %d, %d, %v; want 10000, 65000", low, high, err)
	}
	for _, bad := range []string{"", "10000\n", "65000 10000", "0 100", "1 70000", "a b"} {
		if low, high, err := parsePortRange([]byte(bad)); err == nil {
			t.Errorf("parsePortRange(%q) = %d, %d; want an error", bad, low, high)
		}
	}
}

// TestIntegrationCRRPortsInEphemeralRange runs the TCP_CRR sample with the
// client's ephemeral range narrowed and checks, from the server's
// TIME_WAIT sockets, that netperf used no other client port: outside that
// range secure mode's host sockets may not bind, and such connects went
// over the overlay (the secure column failed as not accelerated).
func TestIntegrationCRRPortsInEphemeralRange(t *testing.T) {
	skipUnlessBenchCanRun(t)
	name := "benchitports"
	prepareLab(t, name)
	l, err := lab.Up(lab.Spec{Name: name, Hosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	server, client := mustNode(t, l, serverHost), mustNode(t, l, clientHost)
	const low, high = 40000, 40999
	err = client.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte(fmt.Sprintf("%d %d", low, high)), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	tools, err := lookTools([]string{"netserver", "netperf"})
	if err != nil {
		t.Fatal(err)
	}
	s := &sample{
		Scenario: Scenario{Name: "host", Server: server, Client: client, ServerAddr: server.Addr, Wrap: unwrapped},
		duration: time.Second, dir: t.TempDir(), tools: tools,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := measureTCPCRR(ctx, s); err != nil {
		t.Fatal(err)
	}
	ports := timeWaitPeerPorts(t, server, client.Addr.String())
	if len(ports) == 0 {
		t.Fatal("no TIME_WAIT connection from the client on the server")
	}
	for _, port := range ports {
		if port < low || port > high {
			t.Fatalf("netperf connected from port %d, outside the client's ephemeral range %d-%d", port, low, high)
		}
	}
}

func mustNode(t *testing.T, l *lab.Lab, name string) lab.Node {
	t.Helper()
	n, err := l.Node(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// timeWaitPeerPorts lists the remote ports of the node's TIME_WAIT
// sockets whose remote address is peer (from /proc/net/tcp).
func timeWaitPeerPorts(t *testing.T, node lab.Node, peer string) []int {
	t.Helper()
	var data []byte
	if err := node.Do(func() (err error) { data, err = os.ReadFile("/proc/thread-self/net/tcp"); return err }); err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddr(peer).As4()
	hexPeer := fmt.Sprintf("%02X%02X%02X%02X", want[3], want[2], want[1], want[0])
	var ports []int
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "06" { // TIME_WAIT
			continue
		}
		addr, port, ok := strings.Cut(f[2], ":")
		if !ok || addr != hexPeer {
			continue
		}
		p, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			t.Fatalf("/proc/net/tcp line %q: %v", line, err)
		}
		ports = append(ports, int(p))
	}
	return ports
}
