package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/testenv"
	"github.com/slimnet/slim/secure"
)

// asNobody runs argv as the unprivileged user nobody.
func asNobody(argv ...string) []string {
	return append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"}, argv...)
}

// runIntruder runs argv in node and returns its attacks once it exits.
func runIntruder(t *testing.T, l *testLab, node string, argv ...string) (map[string]attack, string) {
	t.Helper()
	p := l.start(node, false, argv...)
	p.wait(30 * time.Second) // a refused attack exits 0, one that got through 1
	return parseAttacks(p.output()), p.output()
}

// wantRefused wants each named attack reported, and refused.
func wantRefused(t *testing.T, label string, attacks map[string]attack, out string, names ...string) {
	t.Helper()
	for _, name := range names {
		a, ok := attacks[name]
		switch {
		case !ok:
			t.Errorf("%s: attack %s not reported:\n%s", label, name, out)
		case !a.refused:
			t.Errorf("%s: attack %s NOT REFUSED (%s)", label, name, a.detail)
		}
	}
}

// containerCgroupProcs is the cgroup.procs file of a container's cgroup,
// where the router of host moves the programs it enrolls.
func containerCgroupProcs(t *testing.T, l *testLab, host, container string) string {
	t.Helper()
	base, err := secure.CgroupBase(secure.RouterID(l.RouterDir(host)))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(base, "containers", container, "cgroup.procs")
}

// TestIntegrationSecureIntruderEnrolls: a process of a container that
// slim exec did not start asks the router for host sockets itself (ENROLL,
// then POOL), as an unprivileged user, with a seccomp listener of its own,
// after root moved it into the container's cgroup, or started by slim exec
// with the ioctl guard off. It never gets a host socket; nor can an
// unprivileged process move itself into the container's cgroup.
func TestIntegrationSecureIntruderEnrolls(t *testing.T) {
	testenv.Tools(t, "setpriv")
	l := newSecureLab(t, "sint")
	startHoldServer(l, "h1-c1", "h1", 7340) // an enrolled program: the container's cgroup exists
	bin := binPath("intruder")
	procs := containerCgroupProcs(t, l, "h1", "h1-c1")
	for _, c := range []struct {
		label   string
		argv    []string
		attacks []string
	}{
		{"unprivileged, not started by slim exec", asNobody(bin, "enroll", procs), []string{"cgroup_procs", "enroll", "host_sockets"}},
		{"its own seccomp listener as the guard", asNobody(bin, "fakeguard"), []string{"fake_guard", "host_sockets"}},
		{"moved into the container's cgroup by root", []string{bin, "enroll", procs}, []string{"host_sockets"}},
		{"slim exec without the ioctl guard", []string{"env", "SLIM_IOCTL_GUARD=off", slimPath, "exec", "--", bin, "pool"}, []string{"host_sockets"}},
	} {
		attacks, out := runIntruder(t, l, "h1-c1", c.argv...)
		wantRefused(t, c.label, attacks, out, c.attacks...)
		t.Logf("%s:\n%s", c.label, out)
	}
	// The programs slim exec starts still get host sockets.
	p := l.start("h1-c1", true, bin, "pool")
	p.wait(30 * time.Second)
	if a := parseAttacks(p.output())["host_sockets"]; a.refused {
		t.Errorf("a program started by slim exec got no host socket: %s\n%s", a.detail, p.output())
	}
}

// TestIntegrationSecurePoolSquat: a program in a container binds pool
// sockets (host sockets) to 0.0.0.0 on a free port and on the routers'
// peer port and listens. Both binds are refused, a host service can
// still take the port, and a pool socket that listens without a bind
// gets an ephemeral port that accepts nothing.
func TestIntegrationSecurePoolSquat(t *testing.T) {
	l := newSecureLab(t, "ssq")
	const free, peer = 7341, 7946
	t.Setenv("INTRUDER_HOLD_MS", "20000")
	p := l.start("h1-c1", true, binPath("intruder"), "squat", strconv.Itoa(free), strconv.Itoa(peer))
	p.waitFor("HOLDING", 20*time.Second)
	attacks := parseAttacks(p.output())
	for _, port := range []int{free, peer} {
		name := fmt.Sprintf("bind_%d", port)
		if a, ok := attacks[name]; !ok || !strings.HasSuffix(a.detail, "Operation not permitted") {
			t.Errorf("%s: %+v, want refused with EPERM (secure mode's bind4)", name, a)
		}
	}
	h1, err := l.Node("h1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.Do(func() error { return bindPlain(free) }); err != nil {
		t.Errorf("a host service cannot bind 0.0.0.0:%d while the container holds its pool sockets: %v", free, err)
	}
	line := linesWithPrefix(p.output(), "UNBOUND_LISTENER ")
	if len(line) != 1 {
		t.Fatalf("no UNBOUND_LISTENER line:\n%s", p.output())
	}
	port := strings.TrimPrefix(line[0], "UNBOUND_LISTENER ")
	addr := net.JoinHostPort(h1.Addr.String(), port)
	err = h1.Do(func() error { return dialOnce(addr) })
	if err == nil {
		t.Errorf("a host process connected to %s, a pool socket a container made listen", addr)
	}
	t.Logf("connecting from h1 to the pool socket listening on %s: %v", addr, err)
	t.Logf("intruder:\n%s", p.output())
}

// bindPlain binds a TCP socket to 0.0.0.0:port without SO_REUSEADDR, as
// the strictest host service would, and listens.
func bindPlain(port int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		return err
	}
	return unix.Listen(fd, 1)
}

// dialOnce connects to addr within a second (a dropped SYN times out).
func dialOnce(addr string) error {
	conn, err := net.DialTimeout("tcp4", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	return err
}
