package router_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/testenv"
	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/secure"
)

// publishPortBase: each publish step listens on publishPortBase + its id.
const publishPortBase = 7720

// TestIntegrationRouterPublish pins the listener life cycle the shim relies
// on (docs/protocol.md §1, §2): LISTEN puts the listener in the directory
// pending (the host address without a port: clients wait, then use the
// overlay), and PUBLISH with its host listener gives it the host port.
func TestIntegrationRouterPublish(t *testing.T) {
	l := labWithRouters(t, "rtb", 1)
	res := helper(t, l, "h1-c1", "publish")
	r := res[0]
	if r.Err != "" || r.Type != "OK" || len(r.Facts) != 3 {
		t.Fatalf("PUBLISH: %+v", r)
	}
	host := netip.MustParseAddrPort(r.Facts[0])
	if want := fmt.Sprintf("%s:0 -> %s", host.Addr(), host); r.Text != want {
		t.Errorf("the directory went %q, want %q", r.Text, want)
	}
}

// TestIntegrationRouterRefusesForeignPublish attacks PUBLISH: a container
// may only publish a host listener the router made, for its own overlay
// address. Each attempt gets an ERROR with the errno named, and the
// directory entry stays pending.
func TestIntegrationRouterRefusesForeignPublish(t *testing.T) {
	l := labWithRouters(t, "rtf", 1)
	want := map[string]unix.Errno{
		"publish-other":   unix.EPERM,  // another container's overlay address
		"publish-appsock": unix.EPERM,  // the app's own socket: not of the host
		"publish-pool":    unix.EINVAL, // a host socket that does not listen
		"publish-short":   unix.EINVAL, // a payload of the wrong size
	}
	steps := []string{"publish-other", "publish-appsock", "publish-pool", "publish-short"}
	for _, r := range helper(t, l, "h1-c1", steps...) {
		if r.Type != "ERROR" || unix.Errno(r.Errno) != want[r.Step] {
			t.Errorf("%s: got %+v, want ERROR %v", r.Step, r, want[r.Step])
			continue
		}
		if len(r.Facts) != 3 || !strings.HasSuffix(r.Facts[2], ":0") {
			t.Errorf("%s: the directory entry is no longer pending: %v", r.Step, r.Facts)
		}
	}
}

// TestIntegrationRouterSecurePublishNeedsItsListener: in secure mode a
// container cannot make a host listener the router made for one of its
// overlay ports stand for another (the listener's socket state names the
// overlay address it was made for): EPERM, the entry stays pending.
func TestIntegrationRouterSecurePublishNeedsItsListener(t *testing.T) {
	requireRoot(t)
	for _, f := range secure.Probe().Missing() {
		testenv.KernelFeature(t, f.Name+" (secure mode needs it)", errors.New(f.State()))
	}
	bin := buildSlim(t)
	name := fmt.Sprintf("rts%d", os.Getpid()%100000)
	l, err := lab.Up(lab.Spec{Name: name, Hosts: 1, Containers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Down(name); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	if err := l.StartSecureRouters(bin, "--verbose"); err != nil {
		t.Fatal(err)
	}
	// Enrolled the only way secure mode allows: started by slim exec under
	// its guard (sh in between: slim exec would supervise a Go program's
	// sockets itself; the exec'd test binary keeps the PID, the filter and
	// the cgroup).
	wrap := []string{bin, "exec", "--", "sh", "-c", `exec "$0" "$@"`}
	res := startHelperUnder(t, l, "h1-c1", wrap, "publish-otherport", "publish")()
	if r := res[0]; r.Type != "ERROR" || unix.Errno(r.Errno) != unix.EPERM || len(r.Facts) != 3 || !strings.HasSuffix(r.Facts[2], ":0") {
		t.Errorf("PUBLISH for another port: %+v, want ERROR EPERM and the entry still pending", r)
	}
	if r := res[1]; r.Type != "OK" {
		t.Errorf("PUBLISH for its own port: %+v", r)
	}
}

// publishStep listens, sends LISTEN, then PUBLISH as the step says (the
// host listener it got, or an attack), and reports the reply; Facts: the
// host listener's address, and the directory's host address for the
// listener before and after the PUBLISH.
func publishStep(conn *net.UnixConn, id uint32, step string) stepResult {
	if step == "enroll" {
		return roundTrip(conn, protocol.Message{Type: protocol.TypeEnroll, ID: id}.Encode(), nil)
	}
	app, err := listenerOn(publishPortBase + int(id))
	if err != nil {
		return stepResult{Err: err.Error()}
	}
	defer unix.Close(app)
	listened, host := listenFor(conn, id, app)
	if listened.Type != "LISTEN_OK" || host < 0 {
		return stepResult{Err: fmt.Sprintf("LISTEN: %+v", listened)}
	}
	defer unix.Close(host)
	fields := strings.Fields(listened.Text)
	overlay := netip.MustParseAddrPort(fields[0])
	fd, payload := host, protocol.Publish{Overlay: overlay}.Encode()
	switch step {
	case "publish-other":
		other := netip.AddrPortFrom(overlay.Addr().Next(), overlay.Port())
		payload = protocol.Publish{Overlay: other}.Encode()
	case "publish-appsock":
		fd = app
	case "publish-pool":
		pool, err := poolSocket(conn, id+1000)
		if err != nil {
			return stepResult{Err: err.Error()}
		}
		defer unix.Close(pool)
		fd = pool
	case "publish-short":
		payload = payload[:6]
	case "publish-otherport":
		other := netip.AddrPortFrom(overlay.Addr(), overlay.Port()+1)
		payload = protocol.Publish{Overlay: other}.Encode()
	}
	before := ownDirectoryHost(overlay)
	r := roundTrip(conn, protocol.Message{Type: protocol.TypePublish, ID: id + 2000, Payload: payload}.Encode(), []int{fd})
	after := ownDirectoryHost(overlay)
	r.Facts = []string{fields[1], before, after}
	if r.Type == "OK" {
		r.Text = before + " -> " + after
	}
	return r
}

// poolSocket asks for one pool socket.
func poolSocket(conn *net.UnixConn, id uint32) (int, error) {
	msg := protocol.Message{Type: protocol.TypePool, ID: id, Payload: protocol.Uint32Payload(1)}.Encode()
	if _, err := conn.Write(msg); err != nil {
		return -1, err
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, protocol.MaxMessage)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return -1, err
	}
	cmsgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	if len(cmsgs) != 1 {
		return -1, fmt.Errorf("POOL: no socket")
	}
	fds, err := unix.ParseUnixRights(&cmsgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("POOL: %d sockets (%v)", len(fds), err)
	}
	return fds[0], nil
}

// ownDirectoryHost is the host address the directory beside the router
// socket gives for overlay ("-" if none).
func ownDirectoryHost(overlay netip.AddrPort) string {
	table, err := os.ReadFile(filepath.Join(filepath.Dir(os.Getenv("SLIM_ROUTER_SOCK")), "directory"))
	if err != nil {
		return "-"
	}
	host, found, err := directory.Lookup(table, overlay)
	if err != nil || !found {
		return "-"
	}
	return host.String()
}
