package e2e

import (
	"bytes"
	"debug/elf"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
)

// Debian's busybox-static (one static binary; Alpine images run busybox
// for these applets) under slim exec's supervisor, across the lab's two
// hosts, with the applets' defaults: httpd (a child per connection), nc
// as a server and a client, nc -ll -e (inetd-style: a child execs a
// program holding the connection on fds 0 and 1) and telnetd (select,
// then a blocking accept).

// TestIntegrationSupervisedBusybox: each applet's data arrives intact,
// across hosts over host connections (nothing of it on the VXLAN device),
// the server reports its clients' overlay addresses, clients without Slim
// reach it, slim exec says nothing, and a stopped server leaves no
// process, supervisor, directory entry or host listener behind.
func TestIntegrationSupervisedBusybox(t *testing.T) {
	testenv.Tools(t, "busybox", "curl", "unshare", "mount")
	requireStatic(t, "busybox")
	l := newLab(t, "supbb")
	t.Run("httpd", func(t *testing.T) {
		l.t = t
		runBusyboxHttpd(t, l)
	})
	t.Run("nc", func(t *testing.T) {
		l.t = t
		runBusyboxNc(t, l)
	})
	t.Run("nc -ll -e cat", func(t *testing.T) {
		l.t = t
		runBusyboxNcExec(t, l)
	})
	t.Run("telnetd", func(t *testing.T) {
		l.t = t
		runBusyboxTelnetd(t, l)
	})
}

// requireStatic fails t unless the program name is a static executable
// (Debian's busybox package is dynamic: busybox-static is the one that
// needs the supervisor).
func requireStatic(t *testing.T, name string) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is dynamically linked: install busybox-static (scripts/install-deps.sh)", path)
		}
	}
}

// randomBytes is n bytes of a pattern no compression or echo could fake.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	r.Read(b)
	return b
}

// lockedBuffer is a program's standard output kept apart from its
// standard error.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// piped is a program whose standard input the test writes and whose
// standard output it reads (its standard error is the program's output).
type piped struct {
	*program
	stdout  *lockedBuffer
	input   chan []byte   // written in order by a goroutine of its own
	ended   sync.Once     // input closed
	written chan struct{} // closed when the input is written and closed
}

// startPiped starts argv in node as start does, its standard input a pipe
// and its standard output a buffer of its own.
func (l *testLab) startPiped(node string, accelerated bool, argv ...string) *piped {
	l.t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		l.t.Fatal(err)
	}
	out := &lockedBuffer{}
	p := l.startWith(node, accelerated, func(c *exec.Cmd) {
		c.Stdin, c.Stdout = r, out
		c.WaitDelay = 5 * time.Second // a child left holding the output
	}, argv...)
	r.Close()
	pp := &piped{program: p, stdout: out, input: make(chan []byte, 16), written: make(chan struct{})}
	go func() {
		defer close(pp.written)
		defer w.Close()
		for data := range pp.input {
			w.Write(data) // fails once the program is gone
		}
	}()
	l.t.Cleanup(func() {
		pp.ended.Do(func() { close(pp.input) })
		w.Close() // unblocks a write the program never read
	})
	return pp
}

// send writes data to the program's standard input, after what was sent
// before, without waiting (the program reads it as fast as its peer
// takes it).
func (p *piped) send(data []byte) { p.input <- data }

// endInput closes the program's standard input once what was sent is
// written (10 s at most).
func (p *piped) endInput() {
	p.t.Helper()
	p.ended.Do(func() { close(p.input) })
	select {
	case <-p.written:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s has not read its input after 10 s", p.name)
	}
}

// waitOutput waits until the program's standard output has n bytes, or
// done says it is complete, and returns it.
func (p *piped) waitOutput(n int, done func([]byte) bool, timeout time.Duration) []byte {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := p.stdout.bytes()
		if len(out) >= n && (done == nil || done(out)) {
			return out
		}
		select {
		case <-p.exited:
			p.t.Fatalf("%s exited (%v) with %d bytes of output:\n%s", p.name, p.err, len(out), tail(p.output(), 10))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: after %v, %d bytes of output (want %d or more, complete), ending %q; its messages:\n%s",
				p.name, timeout, len(out), n, out[max(0, len(out)-200):], tail(p.output(), 10))
		}
	}
}

// acceleratedBetween fails t unless h2 has a host connection to the host
// listener standing for the server, and at most maxStrayOverlayBytes
// crossed the VXLAN device since before.
func acceleratedBetween(t *testing.T, l *testLab, what string, server netip.AddrPort, before uint64) {
	t.Helper()
	conns := l.hostConnections("h2")
	crossed := l.vxlanBytes("h1") - before
	t.Logf("%s: %d bytes over VXLAN; host connections in h2: %v", what, crossed, conns)
	if !hasConnectionTo(conns, server) {
		t.Errorf("%s: no host connection from h2 to the server's host listener %s: %v", what, server, conns)
	}
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%s: %d bytes crossed the VXLAN device", what, crossed)
	}
}

// leftNoProcess fails t if a process still runs in node (a child of a
// stopped server: httpd's, nc -e's program, telnetd's login).
func leftNoProcess(t *testing.T, l *testLab, node string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(l.processesIn(node)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if procs := l.processesIn(node); len(procs) > 0 {
		t.Errorf("processes left in %s:\n%s", node, strings.Join(procs, "\n"))
	}
}

// serving starts a server in h1-c1 (under slim exec if accelerated: argv
// may also run slim exec itself), waits until h2's directory lists it,
// checks that a supervisor serves it, and returns it with its host
// listener.
func serving(t *testing.T, l *testLab, port int, accelerated bool, argv ...string) (*program, netip.AddrPort) {
	t.Helper()
	server := l.startWith("h1-c1", accelerated, func(c *exec.Cmd) { c.WaitDelay = 5 * time.Second }, argv...)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), port, 5*time.Second)
	if len(l.guardsIn("h1-c1")) == 0 {
		t.Fatalf("%s runs without a supervisor", server.name)
	}
	return server, l.hostListenerOf("h2", l.containerAddr("h1-c1"), port)
}

func fileBody(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameBytes fails t unless got is want.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes, not the %d sent", what, len(got), len(want))
	}
}

const busyboxHttpdPort = 8080

// runBusyboxHttpd: httpd in h1-c1 serving a directory; busybox wget
// (supervised) and curl (preloaded) in h2 fetch a 4 MiB file over host
// connections, curl without Slim over the overlay; busybox nc (supervised)
// holds a request open while the test looks at the host connections.
func runBusyboxHttpd(t *testing.T, l *testLab) {
	root, downloads := t.TempDir(), t.TempDir()
	big := randomBytes(4<<20, 1)
	index := "hello from busybox httpd\n"
	for name, body := range map[string][]byte{"big.bin": big, "index.html": []byte(index)} {
		if err := os.WriteFile(filepath.Join(root, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	server, host := serving(t, l, busyboxHttpdPort, true, "busybox", "httpd", "-f", "-v", "-p", fmt.Sprint(busyboxHttpdPort), "-h", root)
	url := fmt.Sprintf("http://%s:%d/", l.containerAddr("h1-c1"), busyboxHttpdPort)

	before := l.vxlanBytes("h1")
	wget := l.start("h2-c1", true, "busybox", "wget", "-q", "-O", filepath.Join(downloads, "wget"), url+"big.bin")
	if err := wget.wait(30 * time.Second); err != nil {
		t.Fatalf("busybox wget: %v\n%s", err, wget.output())
	}
	if out, err := l.curl("h2-c2", true, "-o", filepath.Join(downloads, "curl"), url+"big.bin"); err != nil {
		t.Fatalf("curl under slim exec: %v\n%s", err, out)
	}
	crossed := l.vxlanBytes("h1") - before
	t.Logf("busybox wget and curl, 4 MiB each: %d bytes over VXLAN", crossed)
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device for two 4 MiB downloads", crossed)
	}
	sameBytes(t, "busybox wget's download", fileBody(t, filepath.Join(downloads, "wget")), big)
	sameBytes(t, "curl's download", fileBody(t, filepath.Join(downloads, "curl")), big)
	checkSupervised(t, wget)
	if out, err := l.curl("h2-c2", false, "-o", filepath.Join(downloads, "plain"), url+"big.bin"); err != nil {
		t.Errorf("curl without Slim: %v\n%s", err, out)
	} else {
		sameBytes(t, "the download of curl without Slim", fileBody(t, filepath.Join(downloads, "plain")), big)
	}

	// A request whose headers are not complete yet: its connection is
	// open while the test looks.
	nc := l.startPiped("h2-c1", true, "busybox", "nc", l.containerAddr("h1-c1"), fmt.Sprint(busyboxHttpdPort))
	nc.send([]byte("GET /index.html HTTP/1.0\r\n"))
	before = l.vxlanBytes("h1")
	waitForConnection(t, l, host)
	acceleratedBetween(t, l, "a request to httpd", host, before)
	nc.send([]byte("\r\n"))
	nc.endInput()
	if err := nc.wait(10 * time.Second); err != nil || !strings.HasSuffix(string(nc.stdout.bytes()), "\r\n\r\n"+index) {
		t.Errorf("busybox nc as an HTTP client: %v\n%q", err, nc.stdout.bytes())
	}
	checkSupervised(t, nc.program)

	for _, client := range []string{"h2-c1", "h2-c2"} {
		if want := "[::ffff:" + l.containerAddr(client) + "]:"; !strings.Contains(server.output(), want) {
			t.Errorf("httpd did not log %s's overlay address (%s):\n%s", client, want, tail(server.output(), 10))
		}
	}
	l.stopService(server, "h1-c1", busyboxHttpdPort, true)
	checkSupervised(t, server)
	leftNoProcess(t, l, "h1-c1")
}

// waitForConnection waits up to 5 s for a host connection from h2 to the
// host listener server.
func waitForConnection(t *testing.T, l *testLab, server netip.AddrPort) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if hasConnectionTo(l.hostConnections("h2"), server) {
			return
		}
	}
	t.Errorf("no host connection from h2 to %s within 5 s: %v", server, l.hostConnections("h2"))
}

const busyboxNcPort = 9000

// runBusyboxNc: nc -l -p in h1-c1 and nc in h2-c1, both supervised, 3 MiB
// one way and 2 MiB the other at once; the client's end of input ends
// both (busybox nc shuts its sending side at its input's end and exits at
// its peer's).
func runBusyboxNc(t *testing.T, l *testLab) {
	toClient, toServer := randomBytes(3<<20, 2), randomBytes(2<<20, 3)
	server := l.startPiped("h1-c1", true, "busybox", "nc", "-l", "-p", fmt.Sprint(busyboxNcPort))
	addr := l.containerAddr("h1-c1")
	l.waitForDirectory("h2", addr, busyboxNcPort, 5*time.Second)
	host := l.hostListenerOf("h2", addr, busyboxNcPort)
	before := l.vxlanBytes("h1")
	client := l.startPiped("h2-c1", true, "busybox", "nc", addr, fmt.Sprint(busyboxNcPort))
	server.send(toClient)
	client.send(toServer)
	gotByServer := server.waitOutput(len(toServer), nil, 30*time.Second)
	gotByClient := client.waitOutput(len(toClient), nil, 30*time.Second)
	acceleratedBetween(t, l, "nc", host, before)
	client.endInput()
	for _, p := range []*piped{client, server} {
		if err := p.wait(10 * time.Second); err != nil {
			t.Errorf("%s: %v\n%s", p.name, err, tail(p.output(), 10))
		}
		checkSupervised(t, p.program)
	}
	sameBytes(t, "what the server got", gotByServer, toServer)
	sameBytes(t, "what the client got", gotByClient, toClient)
	// nc -l closed its listener when it accepted.
	l.leftNothing(server.program, "h1-c1", busyboxNcPort, host, true)
	leftNoProcess(t, l, "h1-c1")
}

const busyboxNcExecPort = 9001

// runBusyboxNcExec: nc -ll -p PORT -e cat in h1-c1, a persistent server
// that forks for each client and execs cat with the connection on its
// fds 0 and 1. Two supervised clients at once echo 1 MiB each over host
// connections, a client without Slim a line over the overlay.
func runBusyboxNcExec(t *testing.T, l *testLab) {
	server, host := serving(t, l, busyboxNcExecPort, true, "busybox", "nc", "-ll", "-p", fmt.Sprint(busyboxNcExecPort), "-e", "cat")
	addr, port := l.containerAddr("h1-c1"), fmt.Sprint(busyboxNcExecPort)
	before := l.vxlanBytes("h1")
	var clients []*piped
	var sent [][]byte
	for i := range 2 {
		c := l.startPiped("h2-c1", true, "busybox", "nc", addr, port)
		data := randomBytes(1<<20, uint64(10+i))
		c.send(data)
		clients, sent = append(clients, c), append(sent, data)
	}
	var echoed [][]byte
	for i, c := range clients {
		echoed = append(echoed, c.waitOutput(len(sent[i]), nil, 30*time.Second))
	}
	acceleratedBetween(t, l, "nc -e cat", host, before)
	for i, c := range clients {
		c.endInput() // cat sees the end, exits, and the connection ends
		if err := c.wait(10 * time.Second); err != nil {
			t.Errorf("%s: %v\n%s", c.name, err, tail(c.output(), 10))
		}
		sameBytes(t, fmt.Sprintf("client %d's echo", i), echoed[i], sent[i])
		checkSupervised(t, c.program)
	}
	plain := l.startPiped("h2-c2", false, "busybox", "nc", addr, port)
	plain.send([]byte("over the overlay\n"))
	plain.waitOutput(len("over the overlay\n"), nil, 10*time.Second)
	plain.endInput()
	if err := plain.wait(10 * time.Second); err != nil {
		t.Errorf("%s: %v", plain.name, err)
	}
	l.stopService(server, "h1-c1", busyboxNcExecPort, true)
	checkSupervised(t, server)
	leftNoProcess(t, l, "h1-c1")
}

// telnetdPort is telnetd's default port.
const telnetdPort = 23

// runBusyboxTelnetd: telnetd -F -l /bin/cat in h1-c1 on its default port
// (a session runs cat on a pseudo-terminal: a line comes back twice, the
// terminal's echo and cat's), busybox telnet in h2-c1 (supervised) and
// busybox nc in h2-c2 (without Slim). telnetd records each session, with
// its client's address, in utmp and wtmp: files of the test's own,
// mounted over the machine's in a mount namespace of telnetd's.
func runBusyboxTelnetd(t *testing.T, l *testLab) {
	logs := t.TempDir()
	if err := os.WriteFile(filepath.Join(logs, "wtmp"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ownLogs := `mount --bind "$0" /var/log && if [ -e /run/utmp ]; then : >"$0/utmp" && mount --bind "$0/utmp" /run/utmp; fi && exec "$@"`
	argv := []string{"unshare", "--mount", "sh", "-c", ownLogs, logs, slimPath, "exec", "--", "busybox", "telnetd", "-F", "-l", "/bin/cat"}
	server, host := serving(t, l, telnetdPort, false, argv...)
	addr := l.containerAddr("h1-c1")
	twice := func(line string) func([]byte) bool {
		return func(out []byte) bool { return bytes.Count(out, []byte(line)) >= 2 }
	}

	before := l.vxlanBytes("h1")
	telnet := l.startPiped("h2-c1", true, "busybox", "telnet", addr)
	telnet.send([]byte("through slim\n"))
	telnet.waitOutput(0, twice("through slim"), 10*time.Second)
	acceleratedBetween(t, l, "telnet", host, before)
	telnet.endInput()
	if err := telnet.wait(10 * time.Second); err != nil {
		t.Errorf("%s: %v\n%s", telnet.name, err, tail(telnet.output(), 10))
	}
	checkSupervised(t, telnet.program)

	plain := l.startPiped("h2-c2", false, "busybox", "nc", addr, fmt.Sprint(telnetdPort))
	plain.send([]byte("over the overlay\n"))
	plain.waitOutput(0, twice("over the overlay"), 10*time.Second)
	plain.endInput()
	if err := plain.wait(10 * time.Second); err != nil {
		t.Errorf("%s: %v", plain.name, err)
	}

	wtmp := fileBody(t, filepath.Join(logs, "wtmp"))
	for _, client := range []string{"h2-c1", "h2-c2"} {
		if !bytes.Contains(wtmp, []byte(l.containerAddr(client))) {
			t.Errorf("telnetd's wtmp does not name %s's overlay address %s", client, l.containerAddr(client))
		}
	}
	if bytes.Contains(wtmp, []byte("198.18.")) {
		t.Errorf("telnetd's wtmp names a host address")
	}
	l.stopService(server, "h1-c1", telnetdPort, true)
	checkSupervised(t, server)
	leftNoProcess(t, l, "h1-c1")
}
