package router

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/protocol"
)

// TestReserve: RESERVE of a bound socket that does not listen yet lists
// its overlay address pending (host port 0) with no host listener; the
// LISTEN that follows replaces the entry, and an UNLISTEN of the socket
// withdraws a reservation no LISTEN followed. It refuses what LISTEN
// refuses but listening, and a socket bound to no port.
func TestReserve(t *testing.T) {
	r, c := handlerRouter(t)
	shim, _ := shimPair(t, r)
	reserve := func(id uint32) protocol.Message {
		return protocol.Message{Type: protocol.TypeReserve, ID: id}
	}
	app := appListener(t, netip.MustParseAddrPort("0.0.0.0:0"), false)
	overlay := netip.AddrPortFrom(c.Addr, must(localAddr(app)).Port())
	if reply := callWith(t, shim, reserve(1), app); reply.Type != protocol.TypeOK || len(reply.FDs) != 0 {
		t.Fatalf("RESERVE: %v %q, %d fds; want OK and none", reply.Type, reply.Text, len(reply.FDs))
	}
	if got, ok, _ := directory.Lookup(r.table.Snapshot(), overlay); !ok || got.Port() != 0 {
		t.Errorf("after RESERVE the directory gives %s → %v %v; want a pending entry", overlay, got, ok)
	}
	if err := unix.Listen(app, 8); err != nil {
		t.Fatal(err)
	}
	listened := callWith(t, shim, listenRequest(2, 8), app)
	if listened.Type != protocol.TypeListenOK {
		t.Fatalf("LISTEN after RESERVE: %v %q", listened.Type, listened.Text)
	}
	hostCookie := must(socketCookie(listened.FDs[0]))
	if ls, _ := r.listeners.snapshot(); len(ls) != 1 || ls[0].HostCookie != hostCookie {
		t.Errorf("listeners after LISTEN: %+v; want the host listener's alone", ls)
	}

	unlistened := appListener(t, netip.MustParseAddrPort("0.0.0.0:0"), false)
	callWith(t, shim, reserve(4), unlistened)
	callWith(t, shim, protocol.Message{Type: protocol.TypeUnlisten, ID: 5}, unlistened)
	if ls, _ := r.listeners.snapshot(); len(ls) != 1 || ls[0].HostCookie != hostCookie {
		t.Errorf("UNLISTEN of a reserved socket left %+v; want the listener alone", ls)
	}

	unbound, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(unbound)
	wantError(t, "RESERVE of an unbound socket", callWith(t, shim, reserve(6), unbound), unix.EINVAL, "not bound to a port")
	wantError(t, "RESERVE bound elsewhere", callWith(t, shim, reserve(7), appListener(t, netip.MustParseAddrPort("127.0.0.1:0"), false)),
		unix.EADDRNOTAVAIL, "RESERVE: bound to 127.0.0.1")
	wantError(t, "RESERVE without a descriptor", shim.Call(reserve(8)), unix.EINVAL, "carries 0 descriptors")
}
