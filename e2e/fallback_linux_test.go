package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shimRouterTimeout is the shim's default router request timeout
// (SLIM_ROUTER_TIMEOUT_MS).
const shimRouterTimeout = 500 * time.Millisecond

// TestIntegrationRouterFailure checks what an application sees when its
// host's router fails: a dead or stalled router costs a client at most one
// warning line and the router timeout, and the connection goes over the
// overlay; connections accelerated before the failure do not depend on the
// router at all.
func TestIntegrationRouterFailure(t *testing.T) {
	l := newLab(t, "rtf")
	t.Run("router-down", func(t *testing.T) {
		l.t = t
		r := l.killRouter("h2")
		defer l.restartRouter("h2", r)
		elapsed := runFallbackClient(t, l, 7010, "")
		if elapsed > 5*time.Second {
			t.Errorf("the client took %v with its router down", elapsed)
		}
	})
	t.Run("router-stalled", func(t *testing.T) {
		l.t = t
		l.stopRouter("h2")
		elapsed := runFallbackClient(t, l, 7020, "")
		if limit := shimRouterTimeout + 2*time.Second; elapsed > limit {
			t.Errorf("the client took %v with its router stalled (router timeout %v, limit %v)", elapsed, shimRouterTimeout, limit)
		}
	})
	t.Run("restart-keeps-connections", func(t *testing.T) {
		l.t = t
		connectionSurvivesRouterRestart(t, l, 7030)
	})
	for i, g := range garbageReplies {
		t.Run("garbage-"+g.name, func(t *testing.T) {
			l.t = t
			sock := startFakeRouter(t, g.reply)
			elapsed := runFallbackClient(t, l, 7040+10*i, sock)
			if elapsed > 5*time.Second {
				t.Errorf("the client took %v with a router that answers garbage", elapsed)
			}
		})
	}
	t.Run("stale-directory-entry", func(t *testing.T) {
		l.t = t
		staleEntryIsRefused(t, l, 7090)
	})
}

// runFallbackClient runs connect_block's client checks from h2-c1 (whose
// router is down or stalled, or the fake router at routerSock if not
// empty) against its server in h1-c1, both under slim exec, and returns
// how long the client took.
func runFallbackClient(t *testing.T, l *testLab, port int, routerSock string) time.Duration {
	addr := l.containerAddr("h1-c1")
	server := l.start("h1-c1", true, binPath("connect_block"), "server", addr, fmt.Sprint(port))
	server.waitFor("listening on", 10*time.Second)
	argv := []string{binPath("connect_block"), "client", addr, fmt.Sprint(port)}
	if routerSock != "" {
		argv = append([]string{slimPath, "exec", "--router", routerSock, "--"}, argv...)
	}
	start := time.Now()
	client := l.start("h2-c1", routerSock == "", argv...)
	err := client.wait(20 * time.Second)
	elapsed := time.Since(start)
	out := client.output()
	if err != nil || strings.Contains(out, "FAIL") {
		t.Errorf("client failed (%v) after %v:\n%s\nserver:\n%s", err, elapsed, out, server.output())
	}
	if warnings := linesWithPrefix(out, "slim:"); len(warnings) > 1 {
		t.Errorf("the client printed %d slim warnings, want at most one:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	for _, line := range addrLine.FindAllString(out, -1) {
		if strings.Contains(line, "198.18.") {
			t.Errorf("a host address reached the application: %s", line)
		}
	}
	t.Logf("client done in %v:\n%s", elapsed, out)
	return elapsed
}

// restartClient holds one connection and moves data over it in three
// phases, each started by a file appearing in DIR: before the routers are
// killed, while they are dead, after they were restarted. Each phase echoes
// 256 KiB through the server and compares. The helper processes (head,
// cmp, sleep) inherit the connection across exec.
const restartClient = `
set -eu
exec 3<>"/dev/tcp/$ADDR/$PORT"
read -r hello <&3
echo "# $hello"
phase() {
	head -c 262144 /dev/urandom >"$DIR/in.$1"
	head -c 262144 <&3 >"$DIR/out.$1" &
	reader=$!
	cat "$DIR/in.$1" >&3
	wait "$reader"
	cmp "$DIR/in.$1" "$DIR/out.$1"
	echo "phase $1 ok"
}
for p in 1 2 3; do
	while [ ! -e "$DIR/go.$p" ]; do sleep 0.01; done
	phase "$p"
done
exec 3>&-
echo done
`

// connectionSurvivesRouterRestart: an accelerated connection keeps working,
// still off the overlay, while both routers are dead and after they come
// back.
func connectionSurvivesRouterRestart(t *testing.T, l *testLab, port int) {
	addr := l.containerAddr("h1-c1")
	dir := t.TempDir()
	server := l.start("h1-c1", true, binPath("connect_block"), "server", addr, fmt.Sprint(port))
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", addr, port, 10*time.Second)
	script := fmt.Sprintf("ADDR=%s PORT=%d DIR=%s\n%s", addr, port, dir, restartClient)
	client := l.start("h2-c1", true, "bash", "-c", script)

	touch(t, filepath.Join(dir, "go.1"))
	client.waitFor("phase 1 ok", 10*time.Second)
	if len(l.hostConnections("h1")) == 0 {
		t.Fatalf("the connection is not accelerated (no host connection in h1):\n%s", client.output())
	}

	routers := map[string]routerProc{}
	for _, h := range []string{"h1", "h2"} {
		routers[h] = l.killRouter(h)
	}
	restarted := false
	restart := func() {
		if !restarted {
			restarted = true
			for h, r := range routers {
				l.restartRouter(h, r)
			}
		}
	}
	t.Cleanup(restart)

	before := l.vxlanBytes("h1")
	touch(t, filepath.Join(dir, "go.2"))
	client.waitFor("phase 2 ok", 10*time.Second)
	if vx := l.vxlanBytes("h1") - before; vx > 64<<10 {
		t.Errorf("VXLAN carried %d bytes of a 512 KiB echo while the routers were dead", vx)
	}
	if len(l.hostConnections("h1")) == 0 {
		t.Errorf("no host connection in h1 while the routers were dead")
	}

	restart()
	touch(t, filepath.Join(dir, "go.3"))
	client.waitFor("phase 3 ok", 10*time.Second)
	if err := client.wait(10 * time.Second); err != nil {
		t.Errorf("client: %v\n%s\nserver:\n%s", err, client.output(), server.output())
	}
	if warnings := linesWithPrefix(client.output(), "slim:"); len(warnings) > 0 {
		t.Errorf("the client printed slim warnings:\n%s", strings.Join(warnings, "\n"))
	}
}

// garbageReplies are broken answers to a shim's request (docs/protocol.md
// §1): the shim must treat each as a router failure.
var garbageReplies = []struct {
	name  string
	reply func(req []byte) []byte
}{
	{"noise", func([]byte) []byte { return []byte("this is not a slim reply at all, sorry!") }},
	{"bad-version", func(req []byte) []byte { return reply(req, 2, 0x81, 12) }},
	{"bad-length", func(req []byte) []byte { b := reply(req, 1, 0x81, 12); b[12] = 200; return b }},
	{"wrong-type", func(req []byte) []byte { return reply(req, 1, 0x83, 12) }},
	{"short-hello", func(req []byte) []byte { return reply(req, 1, 0x81, 2) }},
}

// reply builds a header (magic, version, type, the request's id, length)
// and a zero payload.
func reply(req []byte, version, typ uint16, payload int) []byte {
	b := make([]byte, 16+payload)
	binary.LittleEndian.PutUint32(b, 0x4d494c53)
	binary.LittleEndian.PutUint16(b[4:], version)
	binary.LittleEndian.PutUint16(b[6:], typ)
	if len(req) >= 12 {
		copy(b[8:12], req[8:12])
	}
	binary.LittleEndian.PutUint32(b[12:], uint32(payload))
	return b
}

// startFakeRouter serves a router socket that answers every request with
// answer(request) and returns its path.
func startFakeRouter(t *testing.T, answer func([]byte) []byte) string {
	sock := filepath.Join(t.TempDir(), "router.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				buf := make([]byte, 2048)
				for {
					n, err := conn.Read(buf)
					if err != nil {
						return
					}
					conn.Write(answer(buf[:n]))
				}
			}()
		}
	}()
	return sock
}

// staleEntryIsRefused: a server killed with SIGKILL leaves its directory
// entry behind until the router's sweep notices; a client that connects
// meanwhile is refused at once (ECONNREFUSED, as over the overlay), it
// does not hang.
func staleEntryIsRefused(t *testing.T, l *testLab, port int) {
	addr := l.containerAddr("h1-c1")
	server := l.start("h1-c1", true, binPath("connect_block"), "server", addr, fmt.Sprint(port))
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", addr, port, 10*time.Second)
	server.cmd.Process.Kill()
	<-server.exited
	script := fmt.Sprintf(`if exec 3<>/dev/tcp/%s/%d; then echo connected; else echo refused; fi`, addr, port)
	start := time.Now()
	client := l.start("h2-c1", true, "bash", "-c", script)
	if err := client.wait(10 * time.Second); err != nil {
		t.Fatalf("client: %v\n%s", err, client.output())
	}
	out := client.output()
	if !strings.Contains(out, "refused") || !strings.Contains(out, "Connection refused") {
		t.Errorf("connecting to a dead server's stale entry: want ECONNREFUSED, got:\n%s", out)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("the refusal took %v", elapsed)
	}
}
