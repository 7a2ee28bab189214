package e2e

import (
	"bytes"
	"context"
	"fmt"
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

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/directory"
)

// routerProc is a host's running router: its pid and command line.
type routerProc struct {
	pid  int
	argv []string
}

// routerConfigPath is where lab keeps a host's router configuration; the
// router's command line names it.
func (l *testLab) routerConfigPath(host string) string {
	return filepath.Join(l.RouterDir(host), "router.json")
}

// findRouter scans /proc for the router serving host (its command line is
// `slim router --config DIR/router.json ...`).
func (l *testLab) findRouter(host string) (routerProc, bool) {
	config := l.routerConfigPath(host)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		for i := 0; i+2 < len(argv); i++ {
			if argv[i] == "router" && argv[i+1] == "--config" && argv[i+2] == config && !zombie(pid) {
				return routerProc{pid: pid, argv: argv}, true
			}
		}
	}
	return routerProc{}, false
}

// zombie says whether pid has exited (and awaits its parent's wait).
func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) STATE ...: comm may hold spaces, so look after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

func (l *testLab) mustFindRouter(host string) routerProc {
	l.t.Helper()
	r, ok := l.findRouter(host)
	if !ok {
		l.t.Fatalf("no router process for %s (config %s)", host, l.routerConfigPath(host))
	}
	return r
}

// killRouter kills host's router with SIGKILL, waits until it is gone and
// returns its command line for restartRouter.
func (l *testLab) killRouter(host string) routerProc {
	l.t.Helper()
	r := l.mustFindRouter(host)
	if err := syscall.Kill(r.pid, syscall.SIGKILL); err != nil {
		l.t.Fatalf("kill router of %s (pid %d): %v", host, r.pid, err)
	}
	for deadline := time.Now().Add(5 * time.Second); !zombie(r.pid); {
		if time.Now().After(deadline) {
			l.t.Fatalf("router of %s (pid %d) still runs after SIGKILL", host, r.pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// restartRouter runs a killed router's command line again in its host
// namespace (as lab.StartRouters does) and waits until it serves its socket.
// lab.Down stops it with the rest of the lab.
func (l *testLab) restartRouter(host string, r routerProc) {
	l.t.Helper()
	n, err := l.Node(host)
	if err != nil {
		l.t.Fatal(err)
	}
	logFile, err := os.OpenFile(filepath.Join(l.RouterDir(host), "router.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		l.t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(r.argv[0], r.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := n.Start(cmd); err != nil {
		l.t.Fatalf("restart router of %s: %v", host, err)
	}
	go cmd.Wait()
	// The router opens its shim socket before its control socket: wait for
	// both (the killed router's files stay behind and refuse meanwhile).
	sock, _ := l.RouterSocket(host)
	l.waitServing(host, "unixpacket", sock)
	l.waitServing(host, "unix", filepath.Join(l.RouterDir(host), "control.sock"))
	// A connection is not yet an answer: wait for one snapshot too.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := control.Fetch(ctx, filepath.Join(l.RouterDir(host), control.SocketName))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("restarted router of %s does not answer on its control socket: %v", host, err)
		}
	}
}

// waitServing waits until a unix socket of host's router accepts.
func (l *testLab) waitServing(host, network, path string) {
	l.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if conn, err := net.Dial(network, path); err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("restarted router of %s does not serve %s", host, path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopRouter freezes host's router with SIGSTOP until the test ends.
func (l *testLab) stopRouter(host string) {
	l.t.Helper()
	r := l.mustFindRouter(host)
	if err := syscall.Kill(r.pid, syscall.SIGSTOP); err != nil {
		l.t.Fatalf("stop router of %s: %v", host, err)
	}
	l.t.Cleanup(func() { syscall.Kill(r.pid, syscall.SIGCONT) })
	for deadline := time.Now().Add(5 * time.Second); !stopped(r.pid); {
		if time.Now().After(deadline) {
			l.t.Fatalf("router of %s (pid %d) is not stopped after SIGSTOP", host, r.pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stopped(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(stat, ')')
	return err == nil && i >= 0 && i+2 < len(stat) && stat[i+2] == 'T'
}

// waitForDirectory waits until host's directory table maps the overlay
// address addr:port to a host listener, i.e. until the listener's router
// has told host's router that the server accepts from it (a pending entry,
// without a host port, does not count). A client that connects earlier
// waits a little, then gets the overlay.
func (l *testLab) waitForDirectory(host, addr string, port int, timeout time.Duration) {
	l.t.Helper()
	overlay := netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port))
	path := filepath.Join(l.RouterDir(host), "directory")
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var table []byte
		if table, err = os.ReadFile(path); err != nil {
			continue
		}
		var found bool
		var hostAddr netip.AddrPort
		if hostAddr, found, err = directory.Lookup(table, overlay); err == nil && found && hostAddr.Port() != 0 {
			return
		}
	}
	l.t.Fatalf("the directory of %s does not list %s as accepted from after %v (%v)", host, overlay, timeout, err)
}

// directoryLists says whether host's directory table maps addr:port now.
func (l *testLab) directoryLists(host, addr string, port int) bool {
	l.t.Helper()
	table, err := os.ReadFile(filepath.Join(l.RouterDir(host), "directory"))
	if err != nil {
		l.t.Fatal(err)
	}
	_, found, err := directory.Lookup(table, netip.AddrPortFrom(netip.MustParseAddr(addr), uint16(port)))
	if err != nil {
		l.t.Fatal(err)
	}
	return found
}

// linesWithPrefix returns the lines of out that start with prefix.
func linesWithPrefix(out, prefix string) []string {
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			lines = append(lines, line)
		}
	}
	return lines
}

// touch creates an empty file (a go-ahead for a scripted client).
func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}
