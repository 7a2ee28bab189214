package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	shimcheckOnce sync.Once
	shimcheckPath string
	shimcheckErr  error
)

// buildShimcheck compiles testdata/shimcheck.c once, beside the slim
// binary that build made.
func buildShimcheck(t *testing.T) string {
	t.Helper()
	build(t)
	shimcheckOnce.Do(func() {
		shimcheckPath = filepath.Join(filepath.Dir(slimPath), "shimcheck")
		out, err := exec.Command("gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", shimcheckPath, "testdata/shimcheck.c").CombinedOutput()
		if err != nil {
			shimcheckErr = fmt.Errorf("gcc shimcheck.c: %v\n%s", err, out)
		}
	})
	if shimcheckErr != nil {
		t.Fatal(shimcheckErr)
	}
	return shimcheckPath
}

// TestIntegrationExecState checks the state the shim carries across exec
// (SLIM_FDS) beyond the connections of testdata/c/forkexec: a merged
// listener inherited by an exec'd image still takes host connections,
// a CLOEXEC listener's host listener does not leak into the new image,
// and posix_spawn hands an accelerated connection on like exec does.
func TestIntegrationExecState(t *testing.T) {
	l := newLab(t, "exs")
	bin := buildShimcheck(t)
	addr := l.containerAddr("h1-c1")

	t.Run("listener-across-exec", func(t *testing.T) {
		l.t = t
		server := serveAcrossExec(t, l, bin, "listen", 7100)
		// The exec'd image is the process that listened: its close
		// withdraws the listener before it returns (UNLISTEN), rather than
		// leaving the entry to the router's sweep.
		server.waitFor("closed listener", 10*time.Second)
		if l.directoryLists("h1", addr, 7100) {
			t.Errorf("the exec'd server closed its listener, yet h1's directory still lists %s:%d", addr, 7100)
		}
	})

	// A server that starts its children with an environment of its own
	// (Postfix's master, Dovecot's): the shim's variables are gone from
	// it, yet the child inherits the armed listener (on all addresses, as
	// theirs are) and its host listener. Without the shim the child
	// accepted from its own listener only and the client waited in the
	// host listener's queue, unanswered. The child chroots before it
	// accepts, out of the router's reach: with SLIM_DEBUG=1 (which must
	// reach it too) the shim must say nothing of an unreachable or
	// refusing router (it said "router unreachable" in every such child,
	// and the PUBLISH of 0.0.0.0:PORT was refused).
	t.Run("listener-across-scrubbed-exec", func(t *testing.T) {
		l.t = t
		server := serveAcrossExec(t, l, "env SLIM_DEBUG=1 "+bin, "scrubbed", 7105, t.TempDir())
		out := server.output()
		if !strings.Contains(out, "listener restored after exec") {
			t.Errorf("SLIM_DEBUG=1 did not reach the child:\n%s", out)
		}
		for _, bad := range []string{"unreachable", "refused", "0.0.0.0:"} {
			if lines := linesWith(out, bad); len(lines) > 0 {
				t.Errorf("the shim's lines say %q:\n%s", bad, strings.Join(lines, "\n"))
			}
		}
	})

	t.Run("posix-spawn", func(t *testing.T) {
		l.t = t
		port := 7110
		server := l.start("h1-c1", true, binPath("connect_block"), "server", addr, fmt.Sprint(port))
		server.waitFor("listening on", 10*time.Second)
		l.waitForDirectory("h2", addr, port, 10*time.Second)
		client := l.start("h2-c1", true, bin, "spawn", addr, fmt.Sprint(port))
		err := client.wait(10 * time.Second)
		out := client.output()
		if err != nil || strings.Contains(out, "FAIL") {
			t.Errorf("client (%v):\n%s\nserver:\n%s", err, out, server.output())
		}
		if !strings.Contains(out, "kernel=198.18.") {
			t.Errorf("the connection handed to the spawned child is not accelerated:\n%s", out)
		}
		for _, line := range addrLine.FindAllString(out, -1) {
			if strings.Contains(line, "198.18.") {
				t.Errorf("a host address reached the application: %s", line)
			}
		}
	})
}

// serveAcrossExec runs shimcheck MODE (with args; bin may start with
// env VAR=VALUE) in h1-c1 (a listener whose accept
// happens in an exec'd image) and a client in h2-c1, and checks that the
// exec'd image took the client's connection from the host listener with
// the client's overlay address as its peer.
func serveAcrossExec(t *testing.T, l *testLab, bin, mode string, port int, args ...string) *program {
	t.Helper()
	addr := l.containerAddr("h1-c1")
	argv := append(strings.Fields(bin), mode, addr, fmt.Sprint(port))
	server := l.start("h1-c1", true, append(argv, args...)...)
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", addr, port, 10*time.Second)
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%d && read -r -t 5 line <&3 && echo "$line"`, addr, port)
	client := l.start("h2-c1", true, "bash", "-c", script)
	if err := client.wait(10 * time.Second); err != nil {
		t.Fatalf("client: %v\n%s\nserver:\n%s", err, client.output(), server.output())
	}
	if err := server.wait(10 * time.Second); err != nil || strings.Contains(server.output(), "FAIL") {
		t.Errorf("server (%v):\n%s", err, server.output())
	}
	out := client.output()
	want := "peer=" + l.containerAddr("h2-c1") + ":"
	if !strings.Contains(out, want) {
		t.Errorf("the exec'd server's accept saw the wrong peer (want %s...):\n%s", want, out)
	}
	if !strings.Contains(out, "kernel=198.18.") {
		t.Errorf("the exec'd server's connection did not come through the host listener:\n%s", out)
	}
	return server
}

// TestIntegrationChrootedClient: a client that chroots before it connects
// (Postfix's smtp with Debian's master.cf) is accelerated: its shim readied
// the router connection and the directory before the root changed. It
// connects more times than one pool batch holds, so it asks the router for
// host sockets from inside the chroot. Before, every connect took the
// overlay ("router unreachable").
func TestIntegrationChrootedClient(t *testing.T) {
	l := newLab(t, "chr")
	bin := buildShimcheck(t)
	addr := l.containerAddr("h1-c1")
	port := 7120
	server := l.start("h1-c1", true, binPath("connect_block"), "server", addr, fmt.Sprint(port))
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", addr, port, 10*time.Second)
	client := l.start("h2-c1", true, bin, "chroot", addr, fmt.Sprint(port), t.TempDir(), "40")
	err := client.wait(20 * time.Second)
	out := client.output()
	wantOutput(t, "client in a chroot", out, err, "accelerated 40 of 40")
	if lines := linesWith(out, "slim:"); len(lines) > 0 {
		t.Errorf("the shim spoke in the chroot:\n%s", strings.Join(lines, "\n"))
	}
}

// TestIntegrationBoundClient: a client that binds to its own overlay
// address with port 0 before connect (iperf3 -B does) is still
// accelerated, and getsockname reports the overlay address with the port
// of the host socket.
func TestIntegrationBoundClient(t *testing.T) {
	l := newLab(t, "bnd")
	bin := buildShimcheck(t)
	addr := l.containerAddr("h1-c1")
	port := 7200
	server := l.start("h1-c1", true, binPath("connect_block"), "server", addr, fmt.Sprint(port))
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", addr, port, 10*time.Second)
	client := l.start("h2-c1", true, bin, "bound", addr, fmt.Sprint(port), l.containerAddr("h2-c1"))
	err := client.wait(10 * time.Second)
	out := client.output()
	if err != nil || strings.Contains(out, "FAIL") {
		t.Errorf("client (%v):\n%s\nserver:\n%s", err, out, server.output())
	}
	if !strings.Contains(out, "# kernel local=198.18.") {
		t.Errorf("the bound client is not accelerated:\n%s", out)
	}
}
