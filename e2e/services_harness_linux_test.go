package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/directory"
)

// Helpers for running real services under slim exec in a lab and checking
// what they leave behind.

// curl fetches url with curl in node (under slim exec if slim) and returns
// what it printed (the body, or curl's error).
func (l *testLab) curl(node string, slim bool, args ...string) (string, error) {
	l.t.Helper()
	p := l.start(node, slim, append([]string{"curl", "-sS", "--max-time", "10"}, args...)...)
	err := p.wait(20 * time.Second)
	return p.output(), err
}

// hostOf is the host a container node runs on (h1-c2: h1).
func hostOf(node string) string {
	host, _, _ := strings.Cut(node, "-")
	return host
}

// hostListenerOf is the host listener that host's directory lists for the
// overlay address addr:port (the one its clients are sent to).
func (l *testLab) hostListenerOf(host, addr string, port int) netip.AddrPort {
	l.t.Helper()
	table, err := os.ReadFile(filepath.Join(l.RouterDir(host), "directory"))
	if err != nil {
		l.t.Fatal(err)
	}
	overlay := netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port))
	listener, found, err := directory.Lookup(table, overlay)
	if err != nil || !found || listener.Port() == 0 {
		l.t.Fatalf("the directory of %s has no host listener for %s (%v)", host, overlay, err)
	}
	return listener
}

// listenerBacklog is the backlog of the TCP listener on addr in host's
// namespace (a listener's send queue in sock_diag), or -1 if none listens
// there.
func (l *testLab) listenerBacklog(host string, addr netip.AddrPort) int {
	l.t.Helper()
	n, err := l.Node(host)
	if err != nil {
		l.t.Fatal(err)
	}
	backlog := -1
	err = n.Do(func() error {
		for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
			sockets, err := netlink.SocketDiagTCP(family)
			if err != nil {
				return err
			}
			for _, s := range sockets {
				local, ok := netip.AddrFromSlice(s.ID.Source)
				if ok && s.State == 10 && local.Unmap() == addr.Addr() && s.ID.SourcePort == addr.Port() {
					backlog = int(s.WQueue)
				}
			}
		}
		return nil
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return backlog
}

// somaxconn is net.core.somaxconn in host's namespace: the kernel's cap on
// a listener's backlog.
func (l *testLab) somaxconn(host string) int {
	l.t.Helper()
	n, _ := l.Node(host)
	var value int
	err := n.Do(func() error {
		b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
		if err == nil {
			value, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return value
}

// guardsIn lists the slim processes (supervisors, their backstops) that run
// in node's network namespace.
func (l *testLab) guardsIn(node string) []string {
	l.t.Helper()
	var guards []string
	for _, p := range l.processesIn(node) {
		if strings.Contains(p, "__ioctl-guard") {
			guards = append(guards, p)
		}
	}
	return guards
}

// processesIn lists the processes that run in node's network namespace,
// each as "PID: command line".
func (l *testLab) processesIn(node string) []string {
	l.t.Helper()
	n, err := l.Node(node)
	if err != nil {
		l.t.Fatal(err)
	}
	var netns string
	n.Do(func() error {
		netns, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	})
	var procs []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		ns, _ := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "net"))
		if ns == netns && len(cmdline) > 0 {
			procs = append(procs, e.Name()+": "+strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "))
		}
	}
	return procs
}

// stopService stops a service that listens on port in node under slim
// exec and checks that nothing is left: its supervisor gone (when
// supervised), its directory entry gone from both hosts, its host listener
// closed.
func (l *testLab) stopService(p *program, node string, port int, supervised bool) {
	l.t.Helper()
	listener := l.hostListenerOf(hostOf(node), l.containerAddr(node), port)
	p.stop()
	l.leftNothing(p, node, port, listener, supervised)
}

// leftNothing checks that p, which listened on port in node and is gone,
// left nothing: its supervisor gone (when supervised), its directory entry
// gone from both hosts, its host listener (listener) closed.
func (l *testLab) leftNothing(p *program, node string, port int, listener netip.AddrPort, supervised bool) {
	l.t.Helper()
	addr := l.containerAddr(node)
	host := hostOf(node)
	for _, h := range []string{"h1", "h2"} {
		l.waitForDirectoryGone(h, addr, port, 5*time.Second)
	}
	deadline := time.Now().Add(5 * time.Second)
	for supervised && len(l.guardsIn(node)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if guards := l.guardsIn(node); len(guards) > 0 {
		l.t.Errorf("%s stopped, its supervisor is still there:\n%s", p.name, strings.Join(guards, "\n"))
	}
	if l.listenerBacklog(host, listener) >= 0 {
		l.t.Errorf("%s stopped, its host listener %s still listens in %s", p.name, listener, host)
	}
}

// hasConnectionTo says whether conns (hostConnections) has one to addr.
func hasConnectionTo(conns []string, addr netip.AddrPort) bool {
	for _, c := range conns {
		if strings.HasSuffix(c, "-"+addr.String()) {
			return true
		}
	}
	return false
}

// errorLines are the lines of a Go service's log at level error.
func errorLines(out string) []string {
	return append(linesWith(out, "level=error"), linesWith(out, `"level":"error"`)...)
}

// linesWith are the lines of out that contain text.
func linesWith(out, text string) []string {
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, text) {
			lines = append(lines, line)
		}
	}
	return lines
}

// wantOutput fails t unless out contains want.
func wantOutput(t *testing.T, what, out string, err error, want string) {
	t.Helper()
	if err != nil || !strings.Contains(out, want) {
		t.Errorf("%s: %v, want %q in:\n%s", what, err, want, tail(out, 10))
	}
}
