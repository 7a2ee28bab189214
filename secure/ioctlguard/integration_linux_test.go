package ioctlguard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/router/protocol"
)

// probeResult is one ioctl's outcome in testdata/probe.py.
type probeResult struct {
	OK    json.RawMessage `json:"ok"`
	Errno int             `json:"errno"`
}

func (r probeResult) String() string {
	if r.OK != nil {
		return "ok " + string(r.OK)
	}
	return fmt.Sprintf("errno %d (%v)", r.Errno, unix.Errno(r.Errno))
}

// probeOutput is what testdata/probe.py prints.
type probeOutput struct {
	Pid    int      `json:"pid"`
	Guards [][2]int `json:"guards"`

	OwnIfconf     probeResult `json:"own_ifconf"`
	ForeignIfconf probeResult `json:"foreign_ifconf"`
	OwnIndex      probeResult `json:"own_index"`
	ForeignIndex  probeResult `json:"foreign_index"`
	NameToIndex   probeResult `json:"nametoindex"`
	OwnAddr       probeResult `json:"own_addr"`
	ForeignAddr   probeResult `json:"foreign_addr"`
	OwnSetMTU     probeResult `json:"own_set_mtu"`
	ForeignSetMTU probeResult `json:"foreign_set_mtu"`
	ForeignSkns   probeResult `json:"foreign_skns"`
	ForeignInq    probeResult `json:"foreign_inq"`

	Compat *subprocess `json:"compat"`
	Nested *subprocess `json:"nested"`
}

// subprocess is a program probe.py ran.
type subprocess struct {
	RC       int
	Out, Err string
}

// TestIntegrationIoctlGuard runs testdata/probe.py under `slim exec` with
// SLIM_IOCTL_GUARD=force (no router) in a fresh network namespace, with a
// socket of the test's namespace as fd 3 standing for a host socket.
func TestIntegrationIoctlGuard(t *testing.T) {
	env := integrationSetup(t)
	ns := testNetns(t)

	t.Run("guarded", func(t *testing.T) {
		out := runProbe(t, env, ns, "SLIM_IOCTL_GUARD=force", "NESTED=1")
		checkGuarded(t, out, ns)
		waitNoSlim(t, env.slim)
	})
	t.Run("off shows the leak", func(t *testing.T) {
		out := runProbe(t, env, ns, "SLIM_IOCTL_GUARD=off")
		if out.ForeignIfconf.OK == nil || out.ForeignIndex.OK == nil {
			t.Errorf("unguarded foreign socket: SIOCGIFCONF %v, SIOCGIFINDEX %v; want answers", out.ForeignIfconf, out.ForeignIndex)
		}
		if len(out.Guards) != 0 {
			t.Errorf("guard processes %v without the guard", out.Guards)
		}
	})
	t.Run("secure router", func(t *testing.T) {
		out := runProbe(t, env, ns, "SLIM_ROUTER_SOCK="+fakeRouter(t, t.TempDir()))
		if out.ForeignIfconf.Errno != int(unix.ENODEV) || string(out.OwnIndex.OK) != "1" {
			t.Errorf("with a secure router: foreign SIOCGIFCONF %v, own SIOCGIFINDEX %v; want ENODEV, 1", out.ForeignIfconf, out.OwnIndex)
		}
		waitNoSlim(t, env.slim)
	})
	t.Run("no router, no guard", func(t *testing.T) {
		out := runProbe(t, env, ns)
		if out.ForeignIfconf.OK == nil || len(out.Guards) != 0 {
			t.Errorf("without a secure router: SIOCGIFCONF %v, guards %v; want no guard", out.ForeignIfconf, out.Guards)
		}
	})
}

// integration is what the integration test built and found.
type integration struct {
	dir, slim, compat string
	hostMTU           int
}

func integrationSetup(t *testing.T) integration {
	if testing.Short() {
		t.Skip("builds slim; skipped with -short")
	}
	testenv.Integration(t)
	testenv.Tools(t, "go", "ip", "nsenter", "python3", "gcc")
	env := integration{dir: t.TempDir()}
	env.slim = filepath.Join(env.dir, "slim")
	build := exec.Command("go", "build", "-o", env.slim, "github.com/slimnet/slim")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if runtime.GOARCH == "amd64" {
		env.compat = filepath.Join(env.dir, "compat32")
		if out, err := exec.Command("gcc", "-O2", "-o", env.compat, "testdata/compat32.c").CombinedOutput(); err != nil {
			t.Logf("no 32-bit entry check: gcc: %v\n%s", err, out)
			env.compat = ""
		}
	}
	fd := udpSocket(t)
	ifr, err := ifreqCall(fd, unix.SIOCGIFMTU, "lo")
	if err != nil {
		t.Fatal(err)
	}
	env.hostMTU = int(ifr.Uint32())
	return env
}

// testNetns makes a network namespace held by a descriptor (never a named
// one, which would race the labs of other packages) with lo up and sg0 (a
// dummy or, if that driver is missing, one end of a veth pair) with
// 198.18.0.1/24 (benchmarking space); it is closed at the end. It returns
// the path that names it for nsenter.
func testNetns(t *testing.T) string {
	scratch, err := netns.NewScratch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scratch.Close() })
	path := scratch.Path()
	ip := func(args ...string) error {
		argv := append([]string{"--net=" + path, "ip"}, args...)
		out, err := exec.Command("nsenter", argv...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s in the test namespace: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("link", "add", "sg0", "type", "dummy"); err != nil {
		if err := ip("link", "add", "sg0", "type", "veth", "peer", "name", "sg1"); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", "198.18.0.1/24", "dev", "sg0"}, {"link", "set", "sg0", "up"}} {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// fakeRouter answers HELLO on a unixpacket socket in dir like a router in
// secure mode, and ENROLL with OK; it returns the socket's path.
func fakeRouter(t *testing.T, dir string) string {
	path := filepath.Join(dir, "router.sock")
	l, err := net.Listen("unixpacket", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go serveFake(conn)
		}
	}()
	return path
}

func serveFake(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, protocol.MaxMessage)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		req, err := protocol.Decode(buf[:n])
		if err != nil {
			return
		}
		reply := protocol.Message{Type: protocol.TypeOK, ID: req.ID}
		switch req.Type {
		case protocol.TypeHello:
			hello := protocol.Hello{Addr: netip.MustParseAddr("198.18.1.2"), Overlay: netip.MustParsePrefix("198.18.0.0/15"), Secure: true}
			reply = protocol.Message{Type: protocol.TypeHelloOK, ID: req.ID, Payload: hello.Encode()}
		case protocol.TypeEnroll:
		default:
			reply = protocol.Message{Type: protocol.TypeError, ID: req.ID, Payload: protocol.ErrorPayload(int32(unix.EOPNOTSUPP), "fake router")}
		}
		if _, err := conn.Write(reply.Encode()); err != nil {
			return
		}
	}
}

// runProbe runs probe.py under slim exec in namespace ns with extra
// environment, with no router listening.
func runProbe(t *testing.T, env integration, ns string, extra ...string) probeOutput {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	foreign := os.NewFile(uintptr(fd), "foreign socket")
	defer foreign.Close()
	cmd := exec.Command("nsenter", "--net="+ns, "--", env.slim, "exec", "--", "python3", "testdata/probe.py")
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + env.dir,
		"SLIM_BIN=" + env.slim,
		"SLIM_SHIM_DIR=" + filepath.Join(env.dir, "shim"),
		"COMPAT_HELPER=" + env.compat,
		"HOST_LO_MTU=" + strconv.Itoa(env.hostMTU),
		"SLIM_ROUTER_SOCK=" + filepath.Join(env.dir, "no-router.sock"),
	}, extra...) // a later SLIM_ROUTER_SOCK in extra wins
	cmd.ExtraFiles = []*os.File{foreign}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("slim exec probe.py: %v\nstderr: %s", err, &stderr)
	}
	t.Logf("probe.py: %s", stdout)
	var out probeOutput
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("probe output %q: %v\nstderr: %s", stdout, err, &stderr)
	}
	return out
}

func checkGuarded(t *testing.T, out probeOutput, ns string) {
	var own [][2]string
	want := [][2]string{{"lo", "127.0.0.1"}, {"sg0", "198.18.0.1"}}
	if err := json.Unmarshal(out.OwnIfconf.OK, &own); err != nil || !slices.Equal(own, want) {
		t.Errorf("SIOCGIFCONF on the socket of namespace %s: %v; want %v", ns, out.OwnIfconf, want)
	}
	wantOK := map[string]probeResult{"SIOCGIFINDEX": out.OwnIndex, "if_nametoindex": out.NameToIndex}
	for name, r := range wantOK {
		if string(r.OK) != "1" {
			t.Errorf("%s(lo) on the namespace's socket: %v, want 1", name, r)
		}
	}
	if string(out.OwnAddr.OK) != `"127.0.0.1"` || out.OwnSetMTU.OK == nil {
		t.Errorf("own socket: SIOCGIFADDR %v, SIOCSIFMTU (continued) %v", out.OwnAddr, out.OwnSetMTU)
	}
	denied := map[string]probeResult{"SIOCGIFCONF": out.ForeignIfconf, "SIOCGIFINDEX": out.ForeignIndex,
		"SIOCGIFADDR": out.ForeignAddr, "SIOCSIFMTU": out.ForeignSetMTU}
	for name, r := range denied {
		if r.Errno != int(unix.ENODEV) {
			t.Errorf("%s on the foreign socket: %v, want ENODEV", name, r)
		}
	}
	if out.ForeignSkns.Errno != int(unix.EPERM) || string(out.ForeignInq.OK) != "0" {
		t.Errorf("foreign socket: SIOCGSKNS %v (want EPERM), SIOCINQ %v (want 0, not guarded)", out.ForeignSkns, out.ForeignInq)
	}
	checkGuardProcess(t, out)
	checkCompat(t, out)
	if out.Nested == nil || out.Nested.RC != 0 || out.Nested.Out != "1" {
		t.Errorf("nested slim exec: %+v, want if_nametoindex 1", out.Nested)
	}
}

// checkGuardProcess checks that one guard ran while the program did, and
// was not its child.
func checkGuardProcess(t *testing.T, out probeOutput) {
	var guards [][2]int
	for _, g := range out.Guards {
		if g[0] != out.Pid {
			guards = append(guards, g)
		}
	}
	if len(guards) != 1 || guards[0][1] == out.Pid {
		t.Errorf("slim processes but the program (pid %d): %v; want one guard, not its child", out.Pid, guards)
	}
}

func checkCompat(t *testing.T, out probeOutput) {
	if out.Compat == nil {
		return
	}
	var c struct {
		OwnIndex      int                      `json:"own_index"`
		ForeignIndex  int                      `json:"foreign_index"`
		OwnIfconf     struct{ Names []string } `json:"own_ifconf"`
		ForeignIfconf int                      `json:"foreign_ifconf"`
	}
	if err := json.Unmarshal([]byte(out.Compat.Out), &c); err != nil {
		t.Fatalf("compat32 output %q: %v (stderr %s)", out.Compat.Out, err, out.Compat.Err)
	}
	if c.OwnIndex != 1 || c.ForeignIndex != -int(unix.ENODEV) || c.ForeignIfconf != -int(unix.ENODEV) ||
		!slices.Equal(c.OwnIfconf.Names, []string{"lo", "sg0"}) {
		t.Errorf("32-bit entry: %s; want index 1 and lo, sg0 on the own socket, ENODEV on the foreign one", out.Compat.Out)
	}
}

// waitNoSlim waits for every process of binary slim (the guard) to exit.
func waitNoSlim(t *testing.T, slim string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := processesOf(slim)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes of %s still running after the program exited: %v", slim, left)
			for _, pid := range left {
				unix.Kill(pid, unix.SIGKILL)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func processesOf(binary string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == binary {
			pids = append(pids, pid)
		}
	}
	return pids
}
