package router_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/namebook"
	"github.com/slimnet/slim/router/protocol"
)

// The integration tests run a real router (the slim binary) in a lab host
// and talk to it from processes in the lab's containers: the router tells
// callers apart by their network namespace, so a test thread cannot pose
// as a container; a child process started in the container's namespace can.

const helperEnv = "SLIM_ROUTER_TEST_HELPER"

var slimBinary string

func TestMain(m *testing.M) {
	if script := os.Getenv(helperEnv); script != "" {
		os.Exit(runHelper(script))
	}
	code := m.Run()
	if slimBinary != "" {
		os.RemoveAll(filepath.Dir(slimBinary))
	}
	os.Exit(code)
}

func requireRoot(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
}

// buildSlim builds the slim binary once per test run.
func buildSlim(t *testing.T) string {
	t.Helper()
	if slimBinary != "" {
		return slimBinary
	}
	dir, err := os.MkdirTemp("", "slim-router-test")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "slim")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/slimnet/slim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building slim: %v\n%s", err, out)
	}
	slimBinary = bin
	return bin
}

// labWithRouters builds a lab with two containers per host and routers.
func labWithRouters(t *testing.T, prefix string, hosts int) *lab.Lab {
	t.Helper()
	requireRoot(t)
	bin := buildSlim(t)
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	l, err := lab.Up(lab.Spec{Name: name, Hosts: hosts, Containers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Down(name); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err := l.StartRouters(bin, "--verbose"); err != nil {
		t.Fatal(err)
	}
	return l
}

// helper runs this test binary as a helper process in a lab node; the
// script is a list of steps, and the helper prints one JSON result per step.
func helper(t *testing.T, l *lab.Lab, node string, steps ...string) []stepResult {
	t.Helper()
	return startHelper(t, l, node, steps...)()
}

// startHelper starts a helper and returns a function that waits for its
// results.
func startHelper(t *testing.T, l *lab.Lab, node string, steps ...string) func() []stepResult {
	t.Helper()
	return startHelperUnder(t, l, node, nil, steps...)
}

// startHelperUnder is startHelper with the helper started by the command
// wrap (nil: directly), which ends by exec'ing its last argument.
func startHelperUnder(t *testing.T, l *lab.Lab, node string, wrap []string, steps ...string) func() []stepResult {
	t.Helper()
	n, err := l.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	sock, _ := l.RouterSocket(node)
	argv := append(append([]string{}, wrap...), os.Args[0], "-test.run=^$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), helperEnv+"="+strings.Join(steps, ";"), "SLIM_ROUTER_SOCK="+sock)
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

func parseResults(t *testing.T, steps []string, out, errOut *bytes.Buffer) []stepResult {
	t.Helper()
	var results []stepResult
	dec := json.NewDecoder(out)
	for {
		var r stepResult
		if err := dec.Decode(&r); err != nil {
			break
		}
		results = append(results, r)
	}
	if len(results) != len(steps) {
		t.Fatalf("helper ran %d of %d steps\nstdout: %s\nstderr: %s", len(results), len(steps), out.String(), errOut.String())
	}
	return results
}

// stepResult is what a helper step saw.
type stepResult struct {
	Step  string   `json:"step"`
	Type  string   `json:"type,omitempty"`
	Errno int32    `json:"errno,omitempty"`
	Text  string   `json:"text,omitempty"`
	Fds   int      `json:"fds,omitempty"`
	Facts []string `json:"facts,omitempty"`
	Err   string   `json:"err,omitempty"`
}

func TestIntegrationRouterServesContainer(t *testing.T) {
	l := labWithRouters(t, "rts", 1)
	res := helper(t, l, "h1-c1", "hello", "pool", "listen", "namebook")

	if res[0].Type != "HELLO_OK" || res[0].Text != "198.19.1.2 198.19.0.0/16" {
		t.Errorf("HELLO: %+v", res[0])
	}
	if res[1].Type != "POOL_OK" || res[1].Fds != 8 {
		t.Errorf("POOL: %+v", res[1])
	}
	var hostNs unix.Stat_t
	if err := unix.Stat(filepath.Join("/run/netns", l.Hosts[0].Netns), &hostNs); err != nil {
		t.Fatal(err)
	}
	wantNs := fmt.Sprint(hostNs.Ino)
	for _, fact := range res[1].Facts {
		if fact != "netns="+wantNs {
			t.Errorf("pool socket %s, want one of the host's (netns=%s)", fact, wantNs)
		}
	}
	if res[2].Type != "LISTEN_OK" || res[2].Fds != 1 {
		t.Fatalf("LISTEN: %+v", res[2])
	}
	if res[3].Type != "NAMEBOOK_OK" || res[3].Fds != 1 || res[3].Text != "book" {
		t.Errorf("NAMEBOOK: %+v; want the container's name book", res[3])
	}
	// The overlay listener 198.19.1.2:PORT is now in the directory, pending
	// (no host port) until a shim says its app accepts (PUBLISH).
	parts := strings.Fields(res[2].Text)
	overlay, host := netip.MustParseAddrPort(parts[0]), netip.MustParseAddrPort(parts[1])
	if host.Addr().String() != "198.18.0.1" || overlay.Addr().String() != "198.19.1.2" {
		t.Errorf("LISTEN_OK maps %s → %s", overlay, host)
	}
	table, err := os.ReadFile(filepath.Join(l.RouterDir("h1"), "directory"))
	if err != nil {
		t.Fatal(err)
	}
	pending := netip.AddrPortFrom(host.Addr(), 0)
	if got, ok, err := directory.Lookup(table, overlay); err != nil || !ok || got != pending {
		t.Errorf("directory lookup of %s = %v, %v, %v; want %s", overlay, got, ok, err, pending)
	}
	// The helper exited: its listeners are gone, and the sweep forgets them.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		table, _ = os.ReadFile(filepath.Join(l.RouterDir("h1"), "directory"))
		if _, ok, _ := directory.Lookup(table, overlay); !ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("listener %s still in the directory 3 s after its process exited", overlay)
}

func TestIntegrationRouterRefusesMalformedAndKeepsServing(t *testing.T) {
	l := labWithRouters(t, "rtm", 1)
	steps := []string{"badmagic", "oversized", "badlength", "unknowntype", "poolzero", "listennofd", "listenudp", "reservenofd", "reserveudp", "reserveunbound", "reservepipe",
		"namebookpayload", "namebookfd", "hello"}
	res := helper(t, l, "h1-c1", steps...)
	for _, r := range res[:len(res)-1] {
		if r.Type != "ERROR" || r.Errno == 0 || r.Text == "" {
			t.Errorf("%s: got %+v, want an ERROR reply with an errno and a reason", r.Step, r)
		}
	}
	if last := res[len(res)-1]; last.Type != "HELLO_OK" {
		t.Errorf("after malformed requests the same connection got %+v", last)
	}
	// A client that disconnects in the middle of a request, and one that
	// never reads, do not disturb others.
	helper(t, l, "h1-c1", "hangup")
	other := helper(t, l, "h1-c2", "hello")
	if other[0].Type != "HELLO_OK" || !strings.HasPrefix(other[0].Text, "198.19.1.3 ") {
		t.Errorf("second container after a hang-up: %+v", other[0])
	}
}

func TestIntegrationRouterRefusesUnregisteredCaller(t *testing.T) {
	l := labWithRouters(t, "rtu", 1)
	// The host namespace itself is no registered container.
	res := helper(t, l, "h1", "hello")
	if res[0].Type != "ERROR" || res[0].Errno != int32(unix.EPERM) || !strings.Contains(res[0].Text, "is not a container registered with this router") {
		t.Errorf("unregistered caller got %+v", res[0])
	}
}

func TestIntegrationRoutersShareDirectory(t *testing.T) {
	l := labWithRouters(t, "rtp", 2)
	t.Setenv("SLIM_TEST_PEER_DIRECTORY", filepath.Join(l.RouterDir("h2"), "directory"))
	wait := startHelper(t, l, "h1-c1", "listen", "peerdirectory", "linger")
	peerTable := filepath.Join(l.RouterDir("h2"), "directory")
	var found []directory.Entry
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && len(found) == 0 {
		table, _ := os.ReadFile(peerTable)
		found, _ = directory.Entries(table)
		time.Sleep(20 * time.Millisecond)
	}
	res := wait()
	if len(found) != 1 {
		t.Fatalf("h2's directory holds %v, want h1-c1's listener", found)
	}
	parts := strings.Fields(res[0].Text)
	host := netip.MustParseAddrPort(parts[1])
	// Pending: the host address without a port, until a PUBLISH.
	want := directory.Entry{Overlay: netip.MustParseAddrPort(parts[0]), Host: netip.AddrPortFrom(host.Addr(), 0)}
	if found[0] != want {
		t.Errorf("h2 learned %+v, h1 published %+v", found[0], want)
	}
	// LISTEN returns only once the peer has published the listener.
	if wantText := want.Overlay.String() + " " + want.Host.String(); res[1].Text != wantText {
		t.Errorf("right after LISTEN h2's directory held %q, want %q", res[1].Text, wantText)
	}
}

func TestIntegrationRouterServesThousandsOfClients(t *testing.T) {
	l := labWithRouters(t, "rtk", 1)
	res := helper(t, l, "h1-c1", "thousands", "hello")
	if res[0].Err != "" || res[0].Text != "2000" {
		t.Errorf("2000 concurrent clients: %+v", res[0])
	}
	if res[1].Type != "HELLO_OK" {
		t.Errorf("router after 2000 clients: %+v", res[1])
	}
	var threads int
	for _, h := range l.Hosts {
		threads = routerThreads(t, l.RouterDir(h.Name))
	}
	if threads > 64 {
		t.Errorf("router runs %d threads for 2000 clients; want a thread count independent of clients", threads)
	}
}

// routerThreads counts the threads of the router serving dir.
func routerThreads(t *testing.T, dir string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), filepath.Join(dir, "router.json")) {
			continue
		}
		tasks, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "task"))
		return len(tasks)
	}
	t.Fatalf("no router process for %s", dir)
	return 0
}

// ---- the helper process ----

func runHelper(script string) int {
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: os.Getenv("SLIM_ROUTER_SOCK"), Net: "unixpacket"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close()
	enc := json.NewEncoder(os.Stdout)
	for i, step := range strings.Split(script, ";") {
		r := runStep(conn, uint32(i+1), step)
		r.Step = step
		enc.Encode(r)
	}
	return 0
}

func runStep(conn *net.UnixConn, id uint32, step string) stepResult {
	msg := func(t protocol.Type, payload []byte) []byte {
		return protocol.Message{Type: t, ID: id, Payload: payload}.Encode()
	}
	switch step {
	case "hello":
		return roundTrip(conn, msg(protocol.TypeHello, nil), nil)
	case "pool":
		return roundTrip(conn, msg(protocol.TypePool, protocol.Uint32Payload(8)), nil)
	case "listen":
		fd, err := overlayListener()
		if err != nil {
			return stepResult{Err: err.Error()}
		}
		return roundTrip(conn, msg(protocol.TypeListen, protocol.Uint32Payload(128)), []int{fd})
	case "badmagic":
		b := msg(protocol.TypeHello, nil)
		b[0] = 'X'
		return roundTrip(conn, b, nil)
	case "oversized":
		return roundTrip(conn, append(msg(protocol.TypeHello, nil), make([]byte, 4*protocol.MaxMessage)...), nil)
	case "badlength":
		b := msg(protocol.TypePool, protocol.Uint32Payload(8))
		b[12] = 200
		return roundTrip(conn, b, nil)
	case "unknowntype":
		return roundTrip(conn, msg(protocol.Type(0x77), nil), nil)
	case "poolzero":
		return roundTrip(conn, msg(protocol.TypePool, protocol.Uint32Payload(0)), nil)
	case "listennofd":
		return roundTrip(conn, msg(protocol.TypeListen, protocol.Uint32Payload(1)), nil)
	case "listenudp":
		fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		return roundTrip(conn, msg(protocol.TypeListen, protocol.Uint32Payload(1)), []int{fd})
	case "reservenofd":
		return roundTrip(conn, msg(protocol.TypeReserve, nil), nil)
	case "reserveudp":
		fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		unix.Bind(fd, &unix.SockaddrInet4{Port: 7609})
		return roundTrip(conn, msg(protocol.TypeReserve, nil), []int{fd})
	case "reserveunbound":
		fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		return roundTrip(conn, msg(protocol.TypeReserve, nil), []int{fd})
	case "reservepipe":
		var p [2]int
		unix.Pipe(p[:])
		return roundTrip(conn, msg(protocol.TypeReserve, nil), []int{p[0]})
	case "stats": // one-way: no reply
		st := protocol.Stats{Fallbacks: []uint32{2, 0, 0, 0, 1}, Setups: make([]uint32, protocol.SetupBuckets)}
		st.Setups[6] = 10
		_, err := conn.Write(msg(protocol.TypeStats, st.Encode()))
		return stepResult{Err: errText(err)}
	case "statsbad": // one-way and malformed: dropped without a reply
		_, err := conn.Write(msg(protocol.TypeStats, []byte{1, 2, 3}))
		return stepResult{Err: errText(err)}
	case "thousands":
		return thousandsOfClients(2000)
	case "peerdirectory":
		// Read the peer's table right after LISTEN returned: no waiting.
		table, err := os.ReadFile(os.Getenv("SLIM_TEST_PEER_DIRECTORY"))
		if err != nil {
			return stepResult{Err: err.Error()}
		}
		entries, err := directory.Entries(table)
		if err != nil {
			return stepResult{Err: err.Error()}
		}
		var texts []string
		for _, e := range entries {
			texts = append(texts, e.Overlay.String()+" "+e.Host.String())
		}
		return stepResult{Text: strings.Join(texts, ",")}
	case "linger":
		time.Sleep(3 * time.Second)
		return stepResult{}
	case "unlisten-host":
		return unlistenStep(conn, id, true)
	case "unlisten-app":
		return unlistenStep(conn, id, false)
	case "publish", "publish-other", "publish-appsock", "publish-pool", "publish-short",
		"publish-otherport", "enroll":
		return publishStep(conn, id, step) // publish_integration_linux_test.go
	case "namebook":
		return roundTrip(conn, msg(protocol.TypeNameBook, nil), nil)
	case "namebookpayload":
		return roundTrip(conn, msg(protocol.TypeNameBook, []byte{1, 2, 3, 4}), nil)
	case "namebookfd":
		fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		return roundTrip(conn, msg(protocol.TypeNameBook, nil), []int{fd})
	case "hangup":
		// Send a request and go away before the reply.
		conn.Write(msg(protocol.TypePool, protocol.Uint32Payload(64)))
		conn.Close()
		return stepResult{}
	}
	return attackStep(conn, id, step) // dos_integration_linux_test.go
}

// thousandsOfClients opens n router connections at once, sends HELLO on
// every one before reading any reply, and counts the HELLO_OKs.
func thousandsOfClients(n int) stepResult {
	addr := &net.UnixAddr{Name: os.Getenv("SLIM_ROUTER_SOCK"), Net: "unixpacket"}
	conns := make([]*net.UnixConn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	hello := protocol.Message{Type: protocol.TypeHello, ID: 1}.Encode()
	for range n {
		c, err := net.DialUnix("unixpacket", nil, addr)
		if err != nil {
			return stepResult{Err: fmt.Sprintf("after %d connections: %v", len(conns), err)}
		}
		conns = append(conns, c)
		if _, err := c.Write(hello); err != nil {
			return stepResult{Err: err.Error()}
		}
	}
	ok := 0
	buf := make([]byte, protocol.MaxMessage)
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if k, err := c.Read(buf); err == nil {
			if m, err := protocol.Decode(buf[:k]); err == nil && m.Type == protocol.TypeHelloOK {
				ok++
			}
		}
	}
	return stepResult{Type: "HELLO_OK", Text: fmt.Sprint(ok)}
}

func overlayListener() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{}); err != nil {
		return -1, err
	}
	return fd, unix.Listen(fd, 16)
}

func roundTrip(conn *net.UnixConn, b []byte, fds []int) stepResult {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := conn.WriteMsgUnix(b, oob, nil); err != nil {
		return stepResult{Err: err.Error()}
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, protocol.MaxMessage)
	roob := make([]byte, unix.CmsgSpace(64*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, roob)
	if err != nil {
		return stepResult{Err: err.Error()}
	}
	m, err := protocol.Decode(buf[:n])
	if err != nil {
		return stepResult{Err: err.Error()}
	}
	r := stepResult{Type: m.Type.String()}
	var got []int
	if oobn > 0 {
		cmsgs, _ := unix.ParseSocketControlMessage(roob[:oobn])
		for _, c := range cmsgs {
			fds, _ := unix.ParseUnixRights(&c)
			got = append(got, fds...)
		}
	}
	r.Fds = len(got)
	for _, fd := range got {
		r.Facts = append(r.Facts, socketFact(fd))
	}
	if m.Type == protocol.TypeNameBookOK && len(got) == 1 {
		if b, err := namebook.Map(got[0]); err == nil {
			r.Text = "book"
			b.Close()
		} else {
			r.Text = err.Error()
		}
	}
	switch m.Type {
	case protocol.TypeError:
		errno, text, _ := protocol.DecodeErrorPayload(m.Payload)
		r.Errno, r.Text = errno, text
	case protocol.TypeHelloOK:
		h, _ := protocol.DecodeHello(m.Payload)
		r.Text = h.Addr.String() + " " + h.Overlay.String()
	case protocol.TypeListenOK:
		l, _ := protocol.DecodeListener(m.Payload)
		r.Text = l.Overlay.String() + " " + l.Host.String()
	}
	return r
}

// socketFact names the network namespace a received socket lives in.
func socketFact(fd int) string {
	nsfd, err := unix.IoctlRetInt(fd, 0x894c)
	if err != nil {
		return "err=" + err.Error()
	}
	defer unix.Close(nsfd)
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		return "err=" + err.Error()
	}
	return fmt.Sprintf("netns=%d", st.Ino)
}
