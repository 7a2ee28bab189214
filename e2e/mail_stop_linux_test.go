package e2e

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startPostfix starts Postfix in node under slim exec (postfix start-fg,
// as in a container) and waits for its master. Should the test end early,
// Postfix is stopped with postfix stop before the harness ends the
// program: a SIGTERM reaches start-fg's shell, not the master, which
// would go on running (and holding the program's output open).
func (l *testLab) startPostfix(node string, d mailDir) *program {
	l.t.Helper()
	postfix := l.start(node, true, "postfix", "-c", d.postfixConfig(), "start-fg")
	n, err := l.Node(node)
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() {
		select {
		case <-postfix.exited:
			return
		default:
		}
		stop := exec.Command("postfix", "-c", d.postfixConfig(), "stop")
		if n.Start(stop) == nil {
			stop.Wait()
		}
		select {
		case <-postfix.exited:
		case <-time.After(20 * time.Second):
		}
	})
	postfix.waitFor("daemon started", 20*time.Second)
	return postfix
}

// holdSession opens a session to server:port from h2-c1 under slim exec
// (bash's /dev/tcp), and while the server's greeting is read and the
// session is open, checks that it is a host connection to the server's
// host listener; then it ends the session with quit.
func holdSession(t *testing.T, l *testLab, server string, port int, greeting, quit string) {
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%d && read -r -t 5 line <&3 && echo "$line" && sleep 1 &&
printf '%%s\r\n' %q >&3 && read -r -t 5 line <&3 && echo "bye: $line"`, server, port, quit)
	p := l.start("h2-c1", true, "bash", "-c", script)
	p.waitFor(greeting, 10*time.Second)
	listener := l.hostListenerOf("h1", server, port)
	if conns := l.hostConnections("h2"); !hasConnectionTo(conns, listener) {
		t.Errorf("a session to %s:%d under slim exec is no host connection to %s: %v", server, port, listener, conns)
	}
	err := p.wait(15 * time.Second)
	wantOutput(t, fmt.Sprintf("session to port %d", port), p.output(), err, "bye: ")
}

// mailStop is how a user stops a mail server: a command, and the exit
// status of the server's program after it.
type mailStop struct {
	argv   []string
	server *program
	status int
}

// postfixStop: postfix start-fg's shell waits for the master and ends
// with its status: 143 (SIGTERM) after postfix stop, with or without Slim.
func postfixStop(d mailDir, p *program) mailStop {
	return mailStop{[]string{"postfix", "-c", d.postfixConfig(), "stop"}, p, 143}
}

func dovecotStop(d mailDir, p *program) mailStop {
	return mailStop{[]string{"doveadm", "-c", d.dovecotConfig(), "stop"}, p, 0}
}

// stopMailServers stops the servers of node that listen on ports as
// their users do, and checks that nothing is left: no directory entry on
// either host, no host listener, no process in the container.
func stopMailServers(t *testing.T, l *testLab, node string, ports []int, stops ...mailStop) {
	server, host := l.containerAddr(node), hostOf(node)
	listeners := map[int]netip.AddrPort{}
	for _, port := range ports {
		listeners[port] = l.hostListenerOf(host, server, port)
	}
	for _, stop := range stops {
		p := l.start(node, false, stop.argv...)
		if err := p.wait(20 * time.Second); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(stop.argv, " "), err, p.output())
		}
		err := stop.server.wait(20 * time.Second)
		if code := exitCode(err); code != stop.status {
			t.Errorf("%s after %s: %v, want exit status %d\n%s", stop.server.name, stop.argv[0], err,
				stop.status, tail(stop.server.output(), 10))
		}
	}
	// The entry goes at the withdrawal (UNLISTEN), a moment before the
	// process closes its host listener: that may take a few milliseconds.
	deadline := time.Now().Add(5 * time.Second)
	for port, listener := range listeners {
		for _, h := range []string{"h1", "h2"} {
			l.waitForDirectoryGone(h, server, port, 5*time.Second)
		}
		for l.listenerBacklog(host, listener) >= 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if l.listenerBacklog(host, listener) >= 0 {
			t.Errorf("the mail servers of %s stopped, the host listener %s of port %d still listens", node, listener, port)
		}
	}
	for len(l.processesIn(node)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := l.processesIn(node); len(left) > 0 {
		t.Errorf("the mail servers stopped, processes are left in %s:\n%s", node, strings.Join(left, "\n"))
	}
}

// exitCode is a program's exit status from its error (0 for nil, -1 if it
// did not exit).
func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	return -1
}
