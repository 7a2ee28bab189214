package router_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/protocol"
)

// unlistenPort is the overlay port the unlisten steps listen on.
const unlistenPort = 7700

// TestIntegrationRouterUnlisten pins what the shim's close() of a listener
// relies on (docs/protocol.md §1): UNLISTEN carrying either the host
// listener or the app's listening socket withdraws the entry before the
// OK, and by then the router holds no copy of the socket it was sent, so
// the app can close its listener and bind the port again at once.
func TestIntegrationRouterUnlisten(t *testing.T) {
	l := labWithRouters(t, "rtl", 1)
	res := helper(t, l, "h1-c1", "unlisten-host", "unlisten-app")
	for _, r := range res {
		if r.Err != "" || r.Type != "OK" || r.Text != "listed before, not listed after; port free" {
			t.Errorf("%s: %+v", r.Step, r)
		}
	}
}

// unlistenStep listens on unlistenPort (no SO_REUSEADDR), sends LISTEN and
// then UNLISTEN with the host listener (withHost) or the app's socket,
// closes the app's socket and binds the port again. It reports whether the
// router's directory listed the listener before and after the OK.
func unlistenStep(conn *net.UnixConn, id uint32, withHost bool) stepResult {
	app, err := listenerOn(unlistenPort)
	if err != nil {
		return stepResult{Err: err.Error()}
	}
	listened, host := listenFor(conn, id, app)
	if listened.Type != "LISTEN_OK" || host < 0 {
		unix.Close(app)
		return stepResult{Err: fmt.Sprintf("LISTEN: %+v", listened)}
	}
	defer unix.Close(host)
	overlay := netip.MustParseAddrPort(strings.Fields(listened.Text)[0])
	before := listedInOwnDirectory(overlay)
	fd := app
	if withHost {
		fd = host
	}
	r := roundTrip(conn, protocol.Message{Type: protocol.TypeUnlisten, ID: id + 1000}.Encode(), []int{fd})
	after := listedInOwnDirectory(overlay)
	unix.Close(app)
	again, err := listenerOn(unlistenPort)
	port := "port free"
	if err != nil {
		port = "port taken: " + err.Error()
	} else {
		unix.Close(again)
	}
	r.Text = fmt.Sprintf("%s before, %s after; %s", listedWord(before), listedWord(after), port)
	return r
}

// listenFor sends LISTEN with app and returns the reply and the host
// listener it carried (-1 if none).
func listenFor(conn *net.UnixConn, id uint32, app int) (stepResult, int) {
	msg := protocol.Message{Type: protocol.TypeListen, ID: id, Payload: protocol.Uint32Payload(16)}.Encode()
	if _, _, err := conn.WriteMsgUnix(msg, unix.UnixRights(app), nil); err != nil {
		return stepResult{Err: err.Error()}, -1
	}
	buf := make([]byte, protocol.MaxMessage)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return stepResult{Err: err.Error()}, -1
	}
	m, err := protocol.Decode(buf[:n])
	if err != nil || m.Type != protocol.TypeListenOK {
		return stepResult{Type: m.Type.String(), Err: fmt.Sprint(err)}, -1
	}
	cmsgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	if len(cmsgs) != 1 {
		return stepResult{Err: "no host listener"}, -1
	}
	fds, _ := unix.ParseUnixRights(&cmsgs[0])
	if len(fds) != 1 {
		return stepResult{Err: "no host listener"}, -1
	}
	lis, _ := protocol.DecodeListener(m.Payload)
	return stepResult{Type: m.Type.String(), Text: lis.Overlay.String() + " " + lis.Host.String()}, fds[0]
}

// listenerOn listens on 0.0.0.0:port, without SO_REUSEADDR.
func listenerOn(port int) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, unix.Listen(fd, 16)
}

// listedInOwnDirectory: the directory beside the router socket maps overlay.
func listedInOwnDirectory(overlay netip.AddrPort) bool {
	table, err := os.ReadFile(filepath.Join(filepath.Dir(os.Getenv("SLIM_ROUTER_SOCK")), "directory"))
	if err != nil {
		return false
	}
	_, found, err := directory.Lookup(table, overlay)
	return err == nil && found
}

func listedWord(listed bool) string {
	if listed {
		return "listed"
	}
	return "not listed"
}
