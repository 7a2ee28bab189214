package router_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/router"
	"github.com/slimnet/slim/router/protocol"
)

// The router attacked by a local user and by plain processes in a
// container (docs/secure.md, "Tested: local denial of service and shim
// reports"). The attackers are helper processes (runHelper) with the
// steps below; the one on the host runs as nobody.

// TestIntegrationLocalUserCannotTakeRouterDown: with the router's
// descriptors lowered to 256, (1) a user (nobody) on the host opens 2000
// idle connections to router.sock, which is 0666: the router keeps a few
// of them, its descriptors stay far below the limit and containers are
// served meanwhile; (2) a process in a container opens 1000 idle
// connections while the control socket and the peer port are tried too:
// the router runs out of descriptors (EMFILE) in all three accept loops.
// Once the attacker is gone the router serves shims, slim status and
// peer routers again. The accept loops used to end for good at EMFILE.
func TestIntegrationLocalUserCannotTakeRouterDown(t *testing.T) {
	l := labWithRouters(t, "dos", 2)
	pid := routerPID(t, l.RouterDir("h1"))
	const limit = 256
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Fatal(err)
	}
	controlPath := filepath.Join(l.RouterDir("h1"), control.SocketName)

	// (1) A local user on the host.
	wait := startHelperAs(t, l, "h1", nobody(), "hold:2000:5000")
	time.Sleep(2 * time.Second)
	if fds := openFiles(t, pid); fds > limit/2 {
		t.Errorf("the router has %d descriptors open while uid 65534 holds 2000 connections", fds)
	}
	if res := helper(t, l, "h1-c2", "hello"); res[0].Type != "HELLO_OK" {
		t.Errorf("a container while uid 65534 holds 2000 connections: %+v", res[0])
	}
	if err := fetch(controlPath); err != nil {
		t.Errorf("slim status while uid 65534 holds 2000 connections: %v", err)
	}
	res := wait()
	t.Logf("uid 65534 opened %s connections", res[0].Text)

	// (2) A process in a container, beyond the router's descriptors.
	wait = startHelper(t, l, "h1-c1", "hold:1000:4000")
	time.Sleep(2 * time.Second)
	t.Logf("the router has %d descriptors open (limit %d)", openFiles(t, pid), limit)
	var tried []io.Closer
	for range 20 {
		if c, err := net.Dial("unix", controlPath); err == nil {
			tried = append(tried, c)
		}
	}
	h2, _ := l.Node("h2")
	h2.Do(func() error {
		for range 20 {
			if c, err := net.DialTimeout("tcp4", "198.18.0.1:7946", time.Second); err == nil {
				tried = append(tried, c)
			}
		}
		return nil
	})
	res = wait()
	t.Logf("the container's process opened %s connections", res[0].Text)
	for _, c := range tried {
		c.Close()
	}

	// Afterwards: everything is served again.
	deadline := time.Now().Add(20 * time.Second)
	for {
		hello := helper(t, l, "h1-c2", "hello")[0]
		statusErr := fetch(controlPath)
		peerErr := peerPortServes(h2)
		if hello.Type == "HELLO_OK" && statusErr == nil && peerErr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the attack: HELLO %+v; slim status: %v; peer port: %v", hello, statusErr, peerErr)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The attack did reach every accept loop.
	log, err := os.ReadFile(filepath.Join(l.RouterDir("h1"), "router.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"shim connection", "control client", "peer router"} {
		if !bytes.Contains(log, []byte(`msg="accept failed; pausing and retrying until it works again" what="`+what+`"`)) {
			t.Errorf("the router never failed to accept a %s: the attack did not reach that loop", what)
		}
	}
}

// TestIntegrationPoolHoarding: a plain process in a container (not under
// slim exec) asks for pools of 64 on 20 connections and reads no reply
// for a second, then reads them all. It gets no more host sockets than
// its quota (limits.pool_sockets), the rest are refused with EDQUOT, the
// control API counts them under the container with its quota, and once
// the process is gone the count falls to zero. It used to get all it
// asked for (355,853 host sockets in 5 s).
func TestIntegrationPoolHoarding(t *testing.T) {
	l := labWithRouters(t, "hoard", 1)
	res := helper(t, l, "h1-c1", "hoard:20:60")
	var received, refused int
	fmt.Sscanf(res[0].Text, "received %d refused %d", &received, &refused)
	t.Logf("20×60 POOL requests of 64, replies read late: %s", res[0].Text)
	if res[0].Err != "" || received > router.DefaultPoolSockets || refused == 0 {
		t.Errorf("the process got %d host sockets (quota %d), %d POOL refused for the quota: %+v", received, router.DefaultPoolSockets, refused, res[0])
	}
	controlPath := filepath.Join(l.RouterDir("h1"), control.SocketName)
	deadline := time.Now().Add(10 * time.Second)
	for {
		snap, err := control.Fetch(context.Background(), controlPath)
		if err != nil {
			t.Fatal(err)
		}
		c := snap.Containers[0]
		if c.Name != "h1-c1" || c.PoolQuota != router.DefaultPoolSockets || c.PoolRefused != uint64(refused) {
			t.Fatalf("control API: %+v; want h1-c1 with quota %d, %d refused", c, router.DefaultPoolSockets, refused)
		}
		if c.PoolSockets == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the process is gone, yet h1-c1 holds %d host sockets", c.PoolSockets)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestIntegrationCensusPastOldBound: a process in a container takes and
// closes 70,400 pool sockets (short connections between two sweeps look
// the same to the census), then connects one to a listener: the control
// API lists that connection. The census used to stop tracking pool
// sockets at 65,536, for ten minutes.
func TestIntegrationCensusPastOldBound(t *testing.T) {
	l := labWithRouters(t, "cens", 1)
	h1, _ := l.Node("h1")
	var ln net.Listener
	if err := h1.Do(func() (err error) { ln, err = net.Listen("tcp4", "198.18.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	target := ln.Addr().String()
	wait := startHelper(t, l, "h1-c1", "churn:1100", "connectpool:"+target+":6000")
	controlPath := filepath.Join(l.RouterDir("h1"), control.SocketName)
	var snap control.Snapshot
	var listed bool
	for deadline := time.Now().Add(40 * time.Second); !listed && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var err error
		if snap, err = control.Fetch(context.Background(), controlPath); err != nil {
			t.Fatal(err)
		}
		for _, c := range snap.Connections {
			listed = listed || (c.Container == "h1-c1" && c.Role == control.RoleClient && c.PeerHost.String() == target)
		}
	}
	res := wait()
	t.Logf("pool sockets taken and closed: %s; the connected one: %+v", res[0].Text, res[1])
	if !listed {
		t.Errorf("after 70,400 pool sockets the connection to %s is not listed: %+v", target, snap.Connections)
	}
}

// TestIntegrationEmptyDatagram: an empty datagram gets an ERROR, and the
// connection goes on (docs/protocol.md §1). It used to end it.
func TestIntegrationEmptyDatagram(t *testing.T) {
	l := labWithRouters(t, "empt", 1)
	res := helper(t, l, "h1-c1", "empty", "hello")
	if res[0].Type != "ERROR" || res[0].Errno != int32(unix.EPROTO) || res[1].Type != "HELLO_OK" {
		t.Errorf("empty datagram: %+v, then HELLO: %+v; want ERROR EPROTO and HELLO_OK", res[0], res[1])
	}
}

// TestIntegrationForgedShimReports: a plain process in a container sends
// STATS of its own making, 1000 of them, with counts up to the most a
// report may carry and beyond. The router credits the container with no
// more setups than the pool sockets it was handed (8), and no more
// fallbacks than the container's rate allows; it shows what it left out
// and refused, and what it credited under the container. It used to add
// it all up (1e14 setups, "10 billion/s").
func TestIntegrationForgedShimReports(t *testing.T) {
	l := labWithRouters(t, "forge", 1)
	res := helper(t, l, "h1-c1", "pool", "forgestats:1000", "hello")
	if res[0].Fds != 8 || res[1].Err != "" || res[2].Type != "HELLO_OK" {
		t.Fatalf("helper: %+v", res)
	}
	snap, err := control.Fetch(context.Background(), filepath.Join(l.RouterDir("h1"), control.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	s := snap.Shims
	t.Logf("shims: %d reports, %d refused, %d setups (%.1f/s), %d fallbacks, %d discarded", s.Reports, s.Refused, s.Setups(), s.SetupsPerSecond, s.TotalFallbacks(), s.Discarded)
	if s.Setups() > 8 || s.SetupsPerSecond > 8 {
		t.Errorf("%d setups (%.1f/s) credited to a container handed 8 pool sockets", s.Setups(), s.SetupsPerSecond)
	}
	if s.TotalFallbacks() > 1<<23 || s.Refused != 1000 || s.Discarded == 0 {
		t.Errorf("%d fallbacks credited, %d reports refused, %d counts discarded", s.TotalFallbacks(), s.Refused, s.Discarded)
	}
	for _, c := range snap.Containers {
		if c.Name == "h1-c1" && (c.ShimSetups != s.Setups() || c.ShimFallbacks != s.TotalFallbacks()) {
			t.Errorf("h1-c1: %d setups, %d fallbacks credited; want the totals", c.ShimSetups, c.ShimFallbacks)
		}
	}
}

// ---- helpers of the tests ----

// nobody is the credential of an unprivileged user.
func nobody() *syscall.Credential { return &syscall.Credential{Uid: 65534, Gid: 65534} }

// startHelperAs is startHelper for a helper running as cred: the test
// binary is copied where that user may run it.
func startHelperAs(t *testing.T, l *lab.Lab, node string, cred *syscall.Credential, steps ...string) func() []stepResult {
	t.Helper()
	n, err := l.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "slim-attacker")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "attacker")
	if err := os.Chmod(dir, 0o755); err != nil || os.WriteFile(bin, self, 0o755) != nil {
		t.Fatalf("copying the helper: %v", err)
	}
	sock, _ := l.RouterSocket(node)
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strings.Join(steps, ";"), "SLIM_ROUTER_SOCK="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := n.Start(cmd); err != nil {
		t.Fatalf("helper in %s: %v", node, err)
	}
	return func() []stepResult {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper in %s: %v\n%s", node, err, errOut.String())
		}
		return parseResults(t, steps, &out, &errOut)
	}
}

// routerPID is the pid of the router serving dir.
func routerPID(t *testing.T, dir string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), filepath.Join(dir, "router.json")) {
			return pid
		}
	}
	t.Fatalf("no router process for %s", dir)
	return 0
}

// openFiles counts the descriptors a process has open.
func openFiles(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// fetch takes one snapshot within 5 s.
func fetch(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := control.Fetch(ctx, path)
	return err
}

// peerPortServes says whether h1's router serves its peer port, from h2:
// a connection that sends garbage is read and closed by a serving router;
// one left in the backlog gets no answer.
func peerPortServes(h2 lab.Node) error {
	return h2.Do(func() error {
		conn, err := net.DialTimeout("tcp4", "198.18.0.1:7946", 2*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.Write(bytes.Repeat([]byte("garbage!"), 4))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(io.Discard, conn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errors.New("a connection to the peer port got no answer in 5 s (not accepted)")
		}
		return nil
	})
}

// ---- the attackers' steps (runStep) ----

// attackStep runs a step NAME[:ARG...] of an attacker.
func attackStep(conn *net.UnixConn, id uint32, step string) stepResult {
	name, rest, _ := strings.Cut(step, ":")
	args := strings.Split(rest, ":")
	arg := func(i int) int { n, _ := strconv.Atoi(args[i]); return n }
	switch name {
	case "empty": // an empty datagram
		return roundTrip(conn, nil, nil)
	case "hold": // hold:N:MS: N idle router connections for MS ms
		return holdConnections(arg(0), time.Duration(arg(1))*time.Millisecond)
	case "hoard": // hoard:CONNS:REQS: pools of 64, replies read a second later
		return hoardPools(arg(0), arg(1))
	case "churn": // churn:N: N pools of 64, every socket closed at once
		return churnPools(conn, id, arg(0))
	case "forgestats": // forgestats:N: N reports at the bound, N beyond it
		return forgeStats(conn, id, arg(0))
	case "connectpool": // connectpool:IP:PORT:MS: a pool socket connected for MS ms
		return connectPool(conn, id, args[0]+":"+args[1], time.Duration(arg(2))*time.Millisecond)
	}
	return stepResult{Err: "unknown step " + step}
}

func dialRouter() (*net.UnixConn, error) {
	return net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: os.Getenv("SLIM_ROUTER_SOCK"), Net: "unixpacket"})
}

// holdConnections opens up to n connections that send nothing (until the
// backlog is full) and holds them.
func holdConnections(n int, hold time.Duration) stepResult {
	var conns []*net.UnixConn
	for range n {
		c, err := dialRouter()
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(hold)
	for _, c := range conns {
		c.Close()
	}
	return stepResult{Text: fmt.Sprint(len(conns))}
}

// hoardPools sends reqs POOL requests of 64 on each of conns connections
// without reading, waits a second, then reads every reply there is and
// counts the sockets and the quota refusals.
func hoardPools(conns, reqs int) stepResult {
	var all []*net.UnixConn
	for range conns {
		c, err := dialRouter()
		if err != nil {
			return stepResult{Err: err.Error()}
		}
		all = append(all, c)
		for i := range reqs {
			c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(protocol.Message{Type: protocol.TypePool, ID: uint32(i + 1), Payload: protocol.Uint32Payload(64)}.Encode()); err != nil {
				break
			}
		}
	}
	time.Sleep(time.Second)
	var received, refused int
	buf := make([]byte, protocol.MaxMessage)
	oob := make([]byte, unix.CmsgSpace(64*4))
	for _, c := range all {
		for {
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
			if err != nil {
				break
			}
			cmsgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range cmsgs {
				fds, _ := unix.ParseUnixRights(&m)
				received += len(fds)
				for _, fd := range fds {
					unix.Close(fd)
				}
			}
			if m, err := protocol.Decode(buf[:n]); err == nil && m.Type == protocol.TypeError {
				if errno, _, _ := protocol.DecodeErrorPayload(m.Payload); errno == int32(unix.EDQUOT) {
					refused++
				}
			}
		}
		c.Close()
	}
	return stepResult{Text: fmt.Sprintf("received %d refused %d", received, refused)}
}

// forgeStats sends n STATS at the most a report may carry (4Mi of each
// count) and n with a count beyond any shim's.
func forgeStats(conn *net.UnixConn, id uint32, n int) stepResult {
	const most = 1 << 22
	bounded := protocol.Stats{Fallbacks: []uint32{most, most}, Setups: make([]uint32, protocol.SetupBuckets)}
	bounded.Setups[0] = most
	beyond := protocol.Stats{Fallbacks: []uint32{^uint32(0)}, Setups: []uint32{^uint32(0)}}
	for range n {
		for _, st := range []protocol.Stats{bounded, beyond} {
			if _, err := conn.Write(protocol.Message{Type: protocol.TypeStats, ID: id, Payload: st.Encode()}.Encode()); err != nil {
				return stepResult{Err: err.Error()}
			}
		}
	}
	return stepResult{}
}

// churnPools takes n pools of 64 and closes every socket at once.
func churnPools(conn *net.UnixConn, id uint32, n int) stepResult {
	total := 0
	for i := range n {
		r, fds := poolOf(conn, id+uint32(i)*1000, 64)
		total += len(fds)
		for _, fd := range fds {
			unix.Close(fd)
		}
		if r.Err != "" || r.Type != "POOL_OK" {
			return stepResult{Err: fmt.Sprintf("pool %d: %+v", i, r)}
		}
	}
	return stepResult{Text: fmt.Sprint(total)}
}

// connectPool connects a pool socket to addr, sends a byte (the SYN
// leaves with it: TCP_FASTOPEN_CONNECT) and holds it.
func connectPool(conn *net.UnixConn, id uint32, addr string, hold time.Duration) stepResult {
	r, fds := poolOf(conn, id, 1)
	if len(fds) != 1 {
		return stepResult{Err: fmt.Sprintf("pool: %+v", r)}
	}
	defer unix.Close(fds[0])
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return stepResult{Err: err.Error()}
	}
	if err := unix.Connect(fds[0], &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}); err != nil {
		return stepResult{Err: "connect: " + err.Error()}
	}
	if _, err := unix.Write(fds[0], []byte{1}); err != nil {
		return stepResult{Err: "write: " + err.Error()}
	}
	time.Sleep(hold)
	return stepResult{Text: "connected"}
}

// poolOf asks for n pool sockets and returns the reply and the sockets.
func poolOf(conn *net.UnixConn, id uint32, n int) (stepResult, []int) {
	b := protocol.Message{Type: protocol.TypePool, ID: id, Payload: protocol.Uint32Payload(uint32(n))}.Encode()
	if _, err := conn.Write(b); err != nil {
		return stepResult{Err: err.Error()}, nil
	}
	buf := make([]byte, protocol.MaxMessage)
	oob := make([]byte, unix.CmsgSpace(64*4))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return stepResult{Err: err.Error()}, nil
	}
	var fds []int
	cmsgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range cmsgs {
		got, _ := unix.ParseUnixRights(&m)
		fds = append(fds, got...)
	}
	m, err := protocol.Decode(buf[:k])
	if err != nil {
		return stepResult{Err: err.Error()}, fds
	}
	return stepResult{Type: m.Type.String()}, fds
}
