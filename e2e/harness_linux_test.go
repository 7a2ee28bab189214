package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/router"
)

// repoRoot is the module's root, where testdata and the Makefile live.
const repoRoot = ".."

var (
	buildOnce sync.Once
	buildErr  error
	buildDir  string
	slimPath  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// build compiles slim (with the current shim) and the C test programs once.
func build(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "slim-e2e")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		slimPath = filepath.Join(dir, "slim")
		steps := [][]string{
			{"make", "-s", "-C", repoRoot, "embed/libslim.so"},
			{"go", "build", "-o", slimPath, "github.com/slimnet/slim"},
			{"make", "-s", "-C", filepath.Join(repoRoot, "testdata", "c")},
		}
		for _, argv := range steps {
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// testLab is a two-host lab with two containers per host and routers.
type testLab struct {
	t *testing.T
	*lab.Lab
}

func newLab(t *testing.T, prefix string) *testLab {
	t.Helper()
	return newLabWith(t, prefix, (*lab.Lab).StartRouters)
}

// newSecureLab is newLab with the routers in secure mode (a fresh cluster
// key). It skips when the kernel lacks a feature secure mode needs.
func newSecureLab(t *testing.T, prefix string) *testLab {
	t.Helper()
	requireSecureMode(t)
	return newLabWith(t, prefix, (*lab.Lab).StartSecureRouters)
}

func newLabWith(t *testing.T, prefix string, start func(*lab.Lab, string, ...string) error) *testLab {
	t.Helper()
	return newLabOf(t, prefix, lab.Spec{Hosts: 2, Containers: 2}, start)
}

// newLabOf is a lab of spec (named after prefix) whose routers start;
// it goes down, with the routers' logs shown on failure, when the test
// ends.
func newLabOf(t *testing.T, prefix string, spec lab.Spec, start func(*lab.Lab, string, ...string) error) *testLab {
	t.Helper()
	testenv.Integration(t)
	build(t)
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	spec.Name = name
	l, err := lab.Up(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range l.Hosts {
				if log, err := os.ReadFile(filepath.Join(l.RouterDir(h.Name), "router.log")); err == nil {
					t.Logf("router of %s:\n%s", h.Name, tail(string(log), 40))
				}
			}
		}
		if err := lab.Down(name); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err := start(l, slimPath, "--verbose"); err != nil {
		t.Fatal(err)
	}
	return &testLab{t: t, Lab: l}
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// program is a process started in a lab node.
type program struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	exited chan struct{}
	err    error
}

// start runs argv in node; accelerated runs it under `slim exec`.
func (l *testLab) start(node string, accelerated bool, argv ...string) *program {
	l.t.Helper()
	return l.startWith(node, accelerated, nil, argv...)
}

// startWith is start with setup, if not nil, applied to the command before
// it starts: what it sets (standard input, a separate standard output)
// stays.
func (l *testLab) startWith(node string, accelerated bool, setup func(*exec.Cmd), argv ...string) *program {
	l.t.Helper()
	n, err := l.Node(node)
	if err != nil {
		l.t.Fatal(err)
	}
	sock, _ := l.RouterSocket(node)
	if accelerated {
		argv = append([]string{slimPath, "exec", "--"}, argv...)
	}
	p := &program{t: l.t, name: node + ": " + strings.Join(argv, " "), exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), "SLIM_ROUTER_SOCK="+sock)
	p.cmd.Stdout = &lockedWriter{p: p}
	p.cmd.Stderr = p.cmd.Stdout
	if setup != nil {
		setup(p.cmd)
	}
	if err := n.Start(p.cmd); err != nil {
		l.t.Fatalf("%s: %v", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	l.t.Cleanup(p.stop)
	return p
}

type lockedWriter struct{ p *program }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

// output is everything the program printed so far.
func (p *program) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the program's output (stdout or stderr) contains text.
func (p *program) waitFor(text string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(p.output(), text) {
		select {
		case <-p.exited:
			if strings.Contains(p.output(), text) {
				return
			}
			p.t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, text, p.output())
		case <-deadline:
			p.t.Fatalf("%s did not print %q within %v:\n%s", p.name, text, timeout, p.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wait waits for the program to exit and returns its error.
func (p *program) wait(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.stop()
		return fmt.Errorf("still running after %v", timeout)
	}
}

// stop ends the program if it still runs.
func (p *program) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitForPort waits until a TCP connection from node to addr succeeds.
func (l *testLab) waitForPort(server *program, node, addr string, timeout time.Duration) {
	l.t.Helper()
	n, err := l.Node(node)
	if err != nil {
		l.t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		err = n.Do(func() error {
			conn, err := net.DialTimeout("tcp4", addr, time.Second)
			if err == nil {
				conn.Close()
			}
			return err
		})
		if err == nil {
			return
		}
		select {
		case <-server.exited:
			l.t.Fatalf("%s exited (%v):\n%s", server.name, server.err, server.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	l.t.Fatalf("%s: nothing accepts on %s after %v: %v\n%s", server.name, addr, timeout, err, server.output())
}

// vxlanBytes is the traffic a host's VXLAN device has carried.
func (l *testLab) vxlanBytes(host string) uint64 {
	l.t.Helper()
	n, err := l.Node(host)
	if err != nil {
		l.t.Fatal(err)
	}
	var total uint64
	err = n.Do(func() error {
		link, err := netlink.LinkByName("slim-vx")
		if err != nil {
			return err
		}
		s := link.Attrs().Statistics
		total = s.TxBytes + s.RxBytes
		return nil
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return total
}

// hostConnections lists the established TCP connections in a host
// namespace whose both ends are on the wire (198.18.0.0/16), leaving out
// the routers' own directory exchange.
func (l *testLab) hostConnections(host string) []string {
	l.t.Helper()
	n, _ := l.Node(host)
	var conns []string
	err := n.Do(func() error {
		// AF_INET6 host sockets (an app's AF_INET6 socket's) are on
		// v4-mapped addresses: To4 below takes them as IPv4.
		sockets, err := netlink.SocketDiagTCP(unix.AF_INET)
		if err != nil {
			return err
		}
		sockets6, err := netlink.SocketDiagTCP(unix.AF_INET6)
		if err != nil {
			return err
		}
		for _, s := range append(sockets, sockets6...) {
			src, dst := s.ID.Source.To4(), s.ID.Destination.To4()
			routers := s.ID.SourcePort == router.DefaultPeerPort || s.ID.DestinationPort == router.DefaultPeerPort
			if s.State == 1 && !routers && src != nil && dst != nil && src[0] == 198 && src[1] == 18 && dst[0] == 198 && dst[1] == 18 {
				conns = append(conns, fmt.Sprintf("%s:%d-%s:%d", s.ID.Source, s.ID.SourcePort, s.ID.Destination, s.ID.DestinationPort))
			}
		}
		return nil
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return conns
}

// containerConnections lists the established TCP connections in a
// container's namespace to or from port: connections on the overlay (an
// accelerated connection's socket is a host socket, in its host's
// namespace).
func (l *testLab) containerConnections(node string, port int) []string {
	l.t.Helper()
	n, err := l.Node(node)
	if err != nil {
		l.t.Fatal(err)
	}
	var conns []string
	err = n.Do(func() error {
		for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
			sockets, err := netlink.SocketDiagTCP(family)
			if err != nil {
				return err
			}
			for _, s := range sockets {
				if s.State == 1 && (int(s.ID.SourcePort) == port || int(s.ID.DestinationPort) == port) {
					conns = append(conns, fmt.Sprintf("%s: %s:%d-%s:%d", node, s.ID.Source, s.ID.SourcePort, s.ID.Destination, s.ID.DestinationPort))
				}
			}
		}
		return nil
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return conns
}

// containerAddr is a container's overlay address.
func (l *testLab) containerAddr(node string) string {
	n, err := l.Node(node)
	if err != nil {
		l.t.Fatal(err)
	}
	return n.Addr.String()
}

func binPath(name string) string {
	p, _ := filepath.Abs(filepath.Join(repoRoot, "testdata", "c", "bin", name))
	return p
}
