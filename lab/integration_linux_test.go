package lab

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"

	"github.com/vishvananda/netlink"

	"github.com/slimnet/slim/overlay"
)

// requireRoot skips integration tests that create namespaces.
func requireRoot(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
}

// uniqueName returns a lab name no other test run uses.
func uniqueName(prefix string) string { return fmt.Sprintf("%s%d", prefix, os.Getpid()%100000) }

// rootLinks names the links of the machine's own namespace.
func rootLinks(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

func upForTest(t *testing.T, spec Spec) *Lab {
	t.Helper()
	l, err := Up(spec)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Cleanup(func() {
		if err := Down(spec.Name); err != nil {
			t.Errorf("Down: %v", err)
		}
	})
	return l
}

func node(t *testing.T, l *Lab, name string) Node {
	t.Helper()
	n, err := l.Node(name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func ping(t *testing.T, from Node, to Node) {
	t.Helper()
	cmd := exec.Command("ping", "-c", "2", "-i", "0.2", "-W", "2", to.Addr.String())
	var b strings.Builder
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := from.Run(cmd); err != nil {
		t.Errorf("ping %s (%s) from %s: %v\n%s", to.Name, to.Addr, from.Name, err, b.String())
	}
}

// tcpEcho sends a line from one node to a listener in another and checks
// that it comes back.
func tcpEcho(t *testing.T, from, to Node) {
	t.Helper()
	var listener net.Listener
	err := to.Do(func() (err error) {
		listener, err = net.Listen("tcp4", net.JoinHostPort(to.Addr.String(), "0"))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", to.Name, err)
	}
	defer listener.Close()
	go func() {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		line, _ := bufio.NewReader(conn).ReadString('\n')
		fmt.Fprint(conn, line)
	}()
	var conn net.Conn
	err = from.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp4", listener.Addr().String(), 3*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("connect %s → %s: %v", from.Name, listener.Addr(), err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	want := "hello from " + from.Name + "\n"
	fmt.Fprint(conn, want)
	got, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || got != want {
		t.Errorf("echo %s → %s: got %q, %v", from.Name, to.Name, got, err)
	}
	if local := conn.LocalAddr().(*net.TCPAddr).IP.String(); local != from.Addr.String() {
		t.Errorf("connection from %s left from %s, want its own address %s", from.Name, local, from.Addr)
	}
}

// vxlanTxPackets reads the transmit counter of a host's VXLAN device.
func vxlanTxPackets(t *testing.T, host Node) uint64 {
	t.Helper()
	var packets uint64
	err := host.Do(func() error {
		link, err := netlink.LinkByName("slim-vx")
		if err != nil {
			return err
		}
		packets = link.Attrs().Statistics.TxPackets
		return nil
	})
	if err != nil {
		t.Fatalf("reading VXLAN counters in %s: %v", host.Name, err)
	}
	return packets
}

func TestIntegrationLabConnectivity(t *testing.T) {
	requireRoot(t)
	before := rootLinks(t)
	spec := Spec{Name: uniqueName("itc"), Hosts: 3, Containers: 2}
	l := upForTest(t, spec)

	c11, c12, c21, c31 := node(t, l, "h1-c1"), node(t, l, "h1-c2"), node(t, l, "h2-c1"), node(t, l, "h3-c1")
	h1 := node(t, l, "h1")
	tx := vxlanTxPackets(t, h1)
	ping(t, c11, c21) // across hosts, over the overlay
	ping(t, c11, c31)
	ping(t, c21, c31)
	ping(t, c11, c12) // same host, over the bridge
	if vxlanTxPackets(t, h1) == tx {
		t.Error("cross-host ping did not go through h1's VXLAN device")
	}
	tcpEcho(t, c11, c21)
	tcpEcho(t, c31, c12)
	tcpEcho(t, c11, c12)
	ping(t, h1, node(t, l, "h2")) // the wire

	// A restarted router sets the overlay up again over the existing one.
	if err := reapplyOverlay(l, 0); err != nil {
		t.Errorf("overlay Up on a configured host: %v", err)
	}
	ping(t, c11, c21)

	if _, err := Up(spec); err == nil || !strings.Contains(err.Error(), "already up") {
		t.Errorf("second Up = %v, want an 'already up' error", err)
	}
	if _, err := Load(spec.Name); err != nil {
		t.Errorf("second Up damaged the lab: %v", err)
	}
	if err := l.Check(); err != nil {
		t.Error(err)
	}
	if err := Down(spec.Name); err != nil {
		t.Fatal(err)
	}
	if left, _ := Leftovers(spec.Name); len(left) > 0 {
		t.Errorf("namespaces left after Down: %v", left)
	}
	if _, err := os.Stat(statePath(spec.Name)); !os.IsNotExist(err) {
		t.Errorf("state file left after Down: %v", err)
	}
	if after := rootLinks(t); !slices.Equal(before, after) {
		t.Errorf("the machine's own links changed: before %v, after %v", before, after)
	}
}

func TestIntegrationLabDownAfterCrashedUp(t *testing.T) {
	requireRoot(t)
	name := uniqueName("itx")
	// What a crash half way through Up leaves: some namespaces, no state,
	// and a process still running in one of them.
	for _, ns := range []string{wireNamespace(name), namespaceOf(name, "h1")} {
		if err := createNamespace(ns); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = Down(name) })
	sleeper := exec.Command("sleep", "60")
	if err := startIn(namespaceOf(name, "h1"), sleeper); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()

	_, err := Up(Spec{Name: name, Hosts: 2, Containers: 1})
	if err == nil || !strings.Contains(err.Error(), "leftovers") {
		t.Fatalf("Up over leftovers = %v, want a leftovers error", err)
	}
	if err := Down(name); err != nil {
		t.Fatal(err)
	}
	if left, _ := Leftovers(name); len(left) > 0 {
		t.Errorf("namespaces left after Down: %v", left)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Error("process in the lab survived Down")
	}
	l, err := Up(Spec{Name: name, Hosts: 1, Containers: 1})
	if err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
	if len(l.Hosts) != 1 {
		t.Errorf("lab has %d hosts", len(l.Hosts))
	}
}

// reapplyOverlay runs the overlay set-up of host index again.
func reapplyOverlay(l *Lab, index int) error {
	plan, err := overlayPlan(len(l.Hosts), l.IPv6.IsValid())
	if err != nil {
		return err
	}
	handle, err := handleFor(l.Hosts[index].Netns)
	if err != nil {
		return err
	}
	defer handle.Close()
	_, _, err = overlay.Ensure(handle, plan, index)
	return err
}
