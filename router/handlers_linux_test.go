package router

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/router/shimserver"
	"github.com/slimnet/slim/router/shimserver/shimtest"
)

// The request handlers over a socketpair, root-free: a router on
// 127.0.0.1 (loopbackRouter) with this process's network namespace as
// its container "self". SIOCGSKNS needs CAP_NET_ADMIN, so the netns of a
// LISTEN's socket is taken to be the caller's unless a test says
// otherwise; TestIntegration* check it for real.

// handlerRouter is a loopbackRouter with no peers, serving shimPair.
func handlerRouter(t *testing.T) (*Router, *container) {
	t.Helper()
	r := loopbackRouter(t)
	c := r.containers.list()[0]
	r.netnsOfSocket = func(int) (uint64, error) { return c.Netns, nil }
	return r, c
}

// fakeNetns is what a test's SIOCGSKNS says.
type fakeNetns struct {
	ino uint64
	err error
}

// fakeIdentifier says every caller is who, or fails with err.
type fakeIdentifier struct {
	who caller
	err error
}

func (f fakeIdentifier) identify(*net.UnixConn) (caller, error) { return f.who, f.err }

// appListener is a TCP socket of the test (the application's), bound to
// addr and listening unless listen is false; closed at the test's end.
func appListener(t *testing.T, addr netip.AddrPort, listen bool, options ...func(fd int)) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	for _, o := range options {
		o(fd)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())}); err != nil {
		t.Fatal(err)
	}
	if listen {
		if err := unix.Listen(fd, 16); err != nil {
			t.Fatal(err)
		}
	}
	return fd
}

func listenRequest(id uint32, backlog uint32) protocol.Message {
	return protocol.Message{Type: protocol.TypeListen, ID: id, Payload: protocol.Uint32Payload(backlog)}
}

// callWith sends a request with descriptors and reads its reply.
func callWith(t *testing.T, shim *shimtest.Shim, m protocol.Message, fds ...int) shimtest.Reply {
	t.Helper()
	shim.Send(m.Encode(), fds...)
	reply, err := shim.Receive(5 * time.Second)
	if err != nil {
		t.Fatalf("%v: no reply: %v", m.Type, err)
	}
	return reply
}

// wantError checks that a reply is an ERROR with errno, saying text.
func wantError(t *testing.T, what string, reply shimtest.Reply, errno unix.Errno, text string) {
	t.Helper()
	if reply.Type != protocol.TypeError || reply.Errno != int32(errno) || !strings.Contains(reply.Text, text) {
		t.Errorf("%s: %v errno %d %q; want ERROR %v saying %q", what, reply.Type, reply.Errno, reply.Text, errno, text)
	}
}

// TestHello: HELLO tells the container its address, the overlay and the
// mode; a HELLO with a payload is refused.
func TestHello(t *testing.T) {
	r, c := handlerRouter(t)
	shim, _ := shimPair(t, r)
	reply := shim.Call(protocol.Message{Type: protocol.TypeHello, ID: 1})
	h, err := protocol.DecodeHello(reply.Payload)
	if reply.Type != protocol.TypeHelloOK || err != nil || h.Addr != c.Addr || h.Overlay != r.plan.Config.CIDR || h.Secure {
		t.Errorf("HELLO: %v %+v %v", reply.Type, h, err)
	}
	wantError(t, "HELLO with a payload", shim.Call(protocol.Message{Type: protocol.TypeHello, ID: 2, Payload: []byte{1}}), unix.EINVAL, "no payload")
}

// TestListenAndUnlisten: LISTEN gives an application's listener a host
// listener with the application's options, publishes it (directory
// table, state file, control API) and hands it over; two SO_REUSEPORT
// listeners of one overlay address share a host port; UNLISTEN by either
// socket withdraws the entry, and one not listed changes nothing.
func TestListenAndUnlisten(t *testing.T) {
	r, c := handlerRouter(t)
	shim, _ := shimPair(t, r)
	app := appListener(t, netip.MustParseAddrPort("0.0.0.0:0"), true, func(fd int) {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 3})
	})
	port := must(localAddr(app)).Port()
	reply := callWith(t, shim, listenRequest(1, 64), app)
	l, err := protocol.DecodeListener(reply.Payload)
	if reply.Type != protocol.TypeListenOK || err != nil || len(reply.FDs) != 1 {
		t.Fatalf("LISTEN: %v %v %q, %d fds", reply.Type, err, reply.Text, len(reply.FDs))
	}
	overlay := netip.AddrPortFrom(c.Addr, port)
	host := must(localAddr(reply.FDs[0]))
	if l.Overlay != overlay || l.Host != host || host.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("LISTEN_OK: %s → %s, host listener on %s; want %s → a port of 127.0.0.1", l.Overlay, l.Host, host, overlay)
	}
	for _, o := range []struct {
		level, name int
		what        string
	}{{unix.IPPROTO_TCP, unix.TCP_NODELAY, "TCP_NODELAY"}, {unix.SOL_SOCKET, unix.SO_KEEPALIVE, "SO_KEEPALIVE"}, {unix.SOL_SOCKET, unix.SO_ACCEPTCONN, "listening"}} {
		if v, err := unix.GetsockoptInt(reply.FDs[0], o.level, o.name); err != nil || v != 1 {
			t.Errorf("host listener: %s = %d, %v; want 1", o.what, v, err)
		}
	}
	if lg, err := unix.GetsockoptLinger(reply.FDs[0], unix.SOL_SOCKET, unix.SO_LINGER); err != nil || lg.Onoff == 0 || lg.Linger != 3 {
		t.Errorf("host listener: SO_LINGER %+v, %v; want the application's", lg, err)
	}
	// Pending until a shim sees the app accept (PUBLISH): host port 0.
	if got, ok, err := directory.Lookup(r.table.Snapshot(), overlay); !ok || got != netip.AddrPortFrom(host.Addr(), 0) {
		t.Errorf("directory table: %s → %v %v %v; want the pending entry %s:0", overlay, got, ok, err, host.Addr())
	}
	if state, err := os.ReadFile(r.config.statePath()); err != nil || !strings.Contains(string(state), overlay.String()) {
		t.Errorf("state file %q, %v; want the listener", state, err)
	}
	if snap := r.Snapshot(); len(snap.Listeners) != 1 || snap.Listeners[0].Container != "self" || snap.Containers[0].Listeners != 1 {
		t.Errorf("control API: listeners %+v, containers %+v", snap.Listeners, snap.Containers)
	}

	// A stranger's socket changes nothing; the host listener withdraws it.
	other := appListener(t, netip.MustParseAddrPort("0.0.0.0:0"), true)
	if reply := callWith(t, shim, protocol.Message{Type: protocol.TypeUnlisten, ID: 2}, other); reply.Type != protocol.TypeOK || len(r.listeners.entries()) != 1 {
		t.Errorf("UNLISTEN of a socket that is no listener's: %v, %d entries left", reply.Type, len(r.listeners.entries()))
	}
	if reply := callWith(t, shim, protocol.Message{Type: protocol.TypeUnlisten, ID: 3}, reply.FDs[0]); reply.Type != protocol.TypeOK || len(r.listeners.entries()) != 0 {
		t.Errorf("UNLISTEN by the host listener: %v, %d entries left", reply.Type, len(r.listeners.entries()))
	}
	if _, ok, _ := directory.Lookup(r.table.Snapshot(), overlay); ok {
		t.Error("the withdrawn listener is still in the directory table")
	}

	// SO_REUSEPORT: one overlay address, one host port, withdrawn one by one.
	reuse := func(fd int) { unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) }
	first := appListener(t, netip.MustParseAddrPort("0.0.0.0:0"), true, reuse)
	shared := must(localAddr(first)).Port()
	second := appListener(t, netip.AddrPortFrom(netip.IPv4Unspecified(), shared), true, reuse)
	a, b := callWith(t, shim, listenRequest(4, 8), first), callWith(t, shim, listenRequest(5, 8), second)
	la, _ := protocol.DecodeListener(a.Payload)
	lb, _ := protocol.DecodeListener(b.Payload)
	if a.Type != protocol.TypeListenOK || b.Type != protocol.TypeListenOK || la.Host != lb.Host || len(r.listeners.entries()) != 1 {
		t.Fatalf("two SO_REUSEPORT listeners: %s and %s, %d directory entries; want one host address", la.Host, lb.Host, len(r.listeners.entries()))
	}
	callWith(t, shim, protocol.Message{Type: protocol.TypeUnlisten, ID: 6}, first) // the app's own socket names it too
	if ls, _ := r.listeners.snapshot(); len(ls) != 1 || len(r.listeners.entries()) != 1 {
		t.Errorf("after one of two withdrew: %d listeners, %d entries; want the other", len(ls), len(r.listeners.entries()))
	}
}

// TestListenRefusals: LISTEN is refused, with the errno a program
// expects, for every socket that is not a listening TCP socket of the
// caller's container bound to its address, and for a malformed request;
// nothing is published.
func TestListenRefusals(t *testing.T) {
	r, c := handlerRouter(t)
	var netns atomic.Pointer[fakeNetns] // what SIOCGSKNS says, in turn
	netns.Store(&fakeNetns{ino: c.Netns})
	r.netnsOfSocket = func(int) (uint64, error) { f := netns.Load(); return f.ino, f.err }
	shim, _ := shimPair(t, r)
	udp, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(udp)
	pipeRead, pipeWrite := shimtest.Pipe(t)
	defer unix.Close(pipeWrite)
	_ = pipeRead
	tests := []struct {
		name  string
		msg   protocol.Message
		fds   []int
		errno unix.Errno
		says  string
	}{
		{"no descriptor", listenRequest(1, 8), nil, unix.EINVAL, "carries 0 descriptors"},
		{"no backlog", protocol.Message{Type: protocol.TypeListen, ID: 2}, []int{appListener(t, netip.MustParseAddrPort("0.0.0.0:0"), true)}, unix.EINVAL, ""},
		{"not listening", listenRequest(3, 8), []int{appListener(t, netip.MustParseAddrPort("0.0.0.0:0"), false)}, unix.EINVAL, "not listening"},
		{"a UDP socket", listenRequest(4, 8), []int{udp}, unix.EINVAL, "not a stream socket"},
		{"a pipe", listenRequest(5, 8), []int{pipeWrite}, unix.EINVAL, "not a socket"},
		{"bound elsewhere", listenRequest(6, 8), []int{appListener(t, netip.MustParseAddrPort("127.0.0.1:0"), true)}, unix.EADDRNOTAVAIL, "not to the container's overlay address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, tt.name, callWith(t, shim, tt.msg, tt.fds...), tt.errno, tt.says)
		})
	}
	netns.Store(&fakeNetns{ino: c.Netns + 1})
	wantError(t, "another namespace's socket", callWith(t, shim, listenRequest(7, 8), appListener(t, netip.MustParseAddrPort("0.0.0.0:0"), true)), unix.EPERM, "does not belong to container self")
	netns.Store(&fakeNetns{err: errors.New("SIOCGSKNS: no")})
	wantError(t, "a socket whose namespace is unknown", callWith(t, shim, listenRequest(8, 8), appListener(t, netip.MustParseAddrPort("0.0.0.0:0"), true)), unix.EINVAL, "SIOCGSKNS")
	if n := len(r.listeners.entries()); n != 0 {
		t.Errorf("refused LISTENs published %d entries", n)
	}
	wantError(t, "UNLISTEN without a descriptor", shim.Call(protocol.Message{Type: protocol.TypeUnlisten, ID: 9}), unix.EINVAL, "carries 0 descriptors")
	wantError(t, "UNLISTEN of a pipe", callWith(t, shim, protocol.Message{Type: protocol.TypeUnlisten, ID: 10}, pipeWrite), unix.EINVAL, "not a socket")
}

// appListener6 is an AF_INET6 TCP socket of the test (the application's),
// with IPV6_V6ONLY as given, bound to addr and listening.
func appListener6(t *testing.T, addr netip.AddrPort, v6only bool) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	only := 0
	if v6only {
		only = 1
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, only); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: addr.Addr().As16(), Port: int(addr.Port())}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 16); err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestListenDualStack: an AF_INET6 listener that carries IPv4 (on ::
// without IPV6_V6ONLY) gets an AF_INET6 host listener on the v4-mapped
// host address, so its connections have the app's family; one that
// carries no IPv4 (IPV6_V6ONLY, an IPv6 address) or is bound to another
// IPv4 address is refused.
func TestListenDualStack(t *testing.T) {
	r, c := handlerRouter(t)
	shim, _ := shimPair(t, r)
	app := appListener6(t, netip.MustParseAddrPort("[::]:0"), false)
	port := must(appListenerAddr(app)).Port()
	reply := callWith(t, shim, listenRequest(1, 8), app)
	l, err := protocol.DecodeListener(reply.Payload)
	if reply.Type != protocol.TypeListenOK || err != nil || len(reply.FDs) != 1 {
		t.Fatalf("LISTEN of a dual-stack listener: %v %v %q", reply.Type, err, reply.Text)
	}
	if want := netip.AddrPortFrom(c.Addr, port); l.Overlay != want {
		t.Errorf("LISTEN_OK: overlay %s, want %s", l.Overlay, want)
	}
	host := reply.FDs[0]
	sa, err := unix.Getsockname(host)
	in6, ok := sa.(*unix.SockaddrInet6)
	if err != nil || !ok || netip.AddrFrom16(in6.Addr) != netip.MustParseAddr("::ffff:127.0.0.1") {
		t.Errorf("host listener bound to %#v (%v); want an AF_INET6 socket on ::ffff:127.0.0.1", sa, err)
	}
	if v, err := unix.GetsockoptInt(host, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); err != nil || v != 0 {
		t.Errorf("host listener: IPV6_V6ONLY %d, %v; want 0 (it carries IPv4)", v, err)
	}
	if ls, _ := r.listeners.snapshot(); len(ls) != 1 || ls[0].family() != unix.AF_INET6 || ls[0].Host != must(localAddr(host)) {
		t.Errorf("registry: %+v; want one AF_INET6 listener on the host listener's address", ls)
	}

	tests := []struct {
		name  string
		fd    int
		errno unix.Errno
		says  string
	}{
		{"IPV6_V6ONLY on ::", appListener6(t, netip.MustParseAddrPort("[::]:0"), true), unix.EINVAL, "IPV6_V6ONLY"},
		{"an IPv6 address", appListener6(t, netip.MustParseAddrPort("[::1]:0"), true), unix.EINVAL, "IPv6 address ::1"},
		{"another IPv4 address, v4-mapped", appListener6(t, netip.MustParseAddrPort("[::ffff:127.0.0.1]:0"), false), unix.EADDRNOTAVAIL, "not to the container's overlay address"},
	}
	for i, tt := range tests {
		wantError(t, tt.name, callWith(t, shim, listenRequest(uint32(2+i), 8), tt.fd), tt.errno, tt.says)
	}
}

// TestPoolFamilies: POOL with family AF_INET6 hands out AF_INET6 sockets
// that carry IPv4 (IPV6_V6ONLY off) with Fast Open; any other family is
// refused.
func TestPoolFamilies(t *testing.T) {
	r, _ := handlerRouter(t)
	shim, _ := shimPair(t, r)
	reply := shim.Call(protocol.Message{Type: protocol.TypePool, ID: 1, Payload: protocol.PoolPayload(2, protocol.PoolInet6)})
	if reply.Type != protocol.TypePoolOK || len(reply.FDs) != 2 {
		t.Fatalf("POOL 2 AF_INET6: %v %q, %d fds", reply.Type, reply.Text, len(reply.FDs))
	}
	for _, fd := range reply.FDs {
		domain, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
		v6only, _ := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		tfo, _ := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT)
		if domain != unix.AF_INET6 || v6only != 0 || tfo != 1 {
			t.Errorf("AF_INET6 pool socket: SO_DOMAIN %d, IPV6_V6ONLY %d, TCP_FASTOPEN_CONNECT %d", domain, v6only, tfo)
		}
	}
	bad := append(protocol.Uint32Payload(2), protocol.Uint32Payload(unix.AF_UNIX)...)
	wantError(t, "POOL of AF_UNIX sockets", shim.Call(protocol.Message{Type: protocol.TypePool, ID: 2, Payload: bad}), unix.EINVAL, "family")
}

// TestTable: TABLE hands over a read-only descriptor of the directory
// table; with a payload, or with the table gone, it is refused.
func TestTable(t *testing.T) {
	r, _ := handlerRouter(t)
	shim, _ := shimPair(t, r)
	reply := shim.Call(protocol.Message{Type: protocol.TypeTable, ID: 1})
	if reply.Type != protocol.TypeTableOK || len(reply.FDs) != 1 {
		t.Fatalf("TABLE: %v %q, %d fds", reply.Type, reply.Text, len(reply.FDs))
	}
	if flags, err := unix.FcntlInt(uintptr(reply.FDs[0]), unix.F_GETFL, 0); err != nil || flags&unix.O_ACCMODE != unix.O_RDONLY {
		t.Errorf("the table's descriptor has flags %#x (%v), want read-only", flags, err)
	}
	if _, err := unix.Write(reply.FDs[0], []byte{0}); err == nil {
		t.Error("a shim can write the directory table through TABLE's descriptor")
	}
	wantError(t, "TABLE with a payload", shim.Call(protocol.Message{Type: protocol.TypeTable, ID: 2, Payload: []byte{0}}), unix.EINVAL, "no payload")
	os.Remove(r.config.DirectoryPath())
	wantError(t, "TABLE without a table", shim.Call(protocol.Message{Type: protocol.TypeTable, ID: 3}), unix.ENOENT, "TABLE")
}

// TestPoolRequests: POOL hands out the sockets asked for (unconnected
// TCP sockets with Fast Open, counted for the container); a malformed
// count is refused.
func TestPoolRequests(t *testing.T) {
	r, _ := handlerRouter(t)
	shim, _ := shimPair(t, r)
	reply := shim.Call(protocol.Message{Type: protocol.TypePool, ID: 1, Payload: protocol.Uint32Payload(3)})
	if reply.Type != protocol.TypePoolOK || len(reply.FDs) != 3 {
		t.Fatalf("POOL 3: %v %q, %d fds", reply.Type, reply.Text, len(reply.FDs))
	}
	for _, fd := range reply.FDs {
		if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT); err != nil || v != 1 {
			t.Errorf("pool socket: TCP_FASTOPEN_CONNECT %d, %v", v, err)
		}
	}
	if held, _, _ := heldPoolSockets(t, r, "self"); held != 3 {
		t.Errorf("the container holds %d pool sockets, want 3", held)
	}
	for _, payload := range [][]byte{nil, protocol.Uint32Payload(0), protocol.Uint32Payload(protocol.MaxPool + 1)} {
		wantError(t, "POOL "+string(payload), shim.Call(protocol.Message{Type: protocol.TypePool, ID: 2, Payload: payload}), unix.EINVAL, "")
	}
}

// TestStatsNotes: STATS is a note: no reply, credited to the container;
// a malformed one is counted as refused.
func TestStatsNotes(t *testing.T) {
	r, _ := handlerRouter(t)
	shim, _ := shimPair(t, r)
	shim.Send(statsNote([]uint32{2}, nil))
	shim.Send(protocol.Message{Type: protocol.TypeStats, ID: 2, Payload: []byte{1, 2, 3}}.Encode())
	shim.Call(protocol.Message{Type: protocol.TypeHello, ID: 3}) // the notes are read
	s := r.Snapshot().Shims
	if s.Reports != 1 || s.Refused != 1 || s.TotalFallbacks() != 2 {
		t.Errorf("after one STATS and one malformed: %d reports, %d refused, %d fallbacks", s.Reports, s.Refused, s.TotalFallbacks())
	}
}

// TestEnrollPlainMode: outside secure mode ENROLL has nothing to do: OK,
// with or without the guard; a malformed one is refused.
func TestEnrollPlainMode(t *testing.T) {
	r, _ := handlerRouter(t)
	shim, _ := shimPair(t, r)
	if reply := shim.Call(protocol.Message{Type: protocol.TypeEnroll, ID: 1}); reply.Type != protocol.TypeOK {
		t.Errorf("ENROLL: %v %q", reply.Type, reply.Text)
	}
	_, pipeWrite := shimtest.Pipe(t)
	defer unix.Close(pipeWrite)
	if reply := callWith(t, shim, protocol.Message{Type: protocol.TypeEnroll, ID: 2, Payload: protocol.Uint32Payload(7)}, pipeWrite); reply.Type != protocol.TypeOK {
		t.Errorf("ENROLL naming a guard: %v %q", reply.Type, reply.Text)
	}
	wantError(t, "ENROLL with 3 bytes", shim.Call(protocol.Message{Type: protocol.TypeEnroll, ID: 3, Payload: []byte{1, 2, 3}}), unix.EINVAL, "ENROLL carries")
}

// TestNotARequest: a message of a type the router sends (a reply) is no
// request.
func TestNotARequest(t *testing.T) {
	r, _ := handlerRouter(t)
	shim, _ := shimPair(t, r)
	wantError(t, "HELLO_OK from a shim", shim.Call(protocol.Message{Type: protocol.TypeHelloOK, ID: 1}), unix.EOPNOTSUPP, "is not a request")
}

// TestUnregisteredCallers: a caller in no registered container, or one
// the kernel could not identify, gets EPERM for every request saying
// why, and its STATS are counted as refused; its connections count
// against its user (or, unidentified, against one shared share).
func TestUnregisteredCallers(t *testing.T) {
	r, _ := handlerRouter(t)
	r.callers = fakeIdentifier{who: caller{PID: 4242, UID: 1000}}
	shim, _ := shimPair(t, r)
	wantError(t, "a stranger's HELLO", shim.Call(protocol.Message{Type: protocol.TypeHello, ID: 1}), unix.EPERM, "process 4242's network namespace net:[0] is not a container registered")
	shim.Send(statsNote([]uint32{1}, nil))
	wantError(t, "a stranger's POOL", shim.Call(protocol.Message{Type: protocol.TypePool, ID: 2, Payload: protocol.Uint32Payload(1)}), unix.EPERM, "is not a container registered")
	if s := r.Snapshot().Shims; s.Refused != 1 || s.Reports != 0 {
		t.Errorf("a stranger's STATS: %d refused, %d reports", s.Refused, s.Reports)
	}
	r.callers = fakeIdentifier{err: errors.New("SO_PEERCRED: no")}
	shim, _ = shimPair(t, r)
	wantError(t, "an unidentified caller's HELLO", shim.Call(protocol.Message{Type: protocol.TypeHello, ID: 3}), unix.EPERM, "SO_PEERCRED: no")

	c := r.containers.list()[0]
	for _, tt := range []struct {
		who   caller
		err   error
		owner string
	}{
		{caller{PID: 1, UID: 7, Container: c}, nil, "container self"},
		{caller{PID: 1, UID: 7, Container: c}, errExited, "uid 7"},
		{caller{PID: 1, UID: 7}, nil, "uid 7"},
		{caller{}, errors.New("no credentials"), "unknown"},
	} {
		o := ownerOf(tt.who, tt.err)
		got := fmt.Sprintf("uid %d", o.UID)
		switch {
		case o.Container != "":
			got = "container " + o.Container
		case o.UID == shimserver.UnknownUID:
			got = "unknown"
		}
		if got != tt.owner {
			t.Errorf("ownerOf(%+v, %v) = %s, want %s", tt.who, tt.err, got, tt.owner)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestListenBacklogFloor: a host listener's backlog is at least
// minHostBacklog (as far as net.core.somaxconn allows) whatever the app
// listened with. With the app's backlog of 5 (Python's http.server), a
// host listener under load answered SYNs with syncookies and the second
// segment of an accelerated client (its data after the preamble) with a
// reset (router/sockets_linux.go, minHostBacklog).
func TestListenBacklogFloor(t *testing.T) {
	somaxconn, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Fatal(err)
	}
	want := min(minHostBacklog, must(strconv.Atoi(strings.TrimSpace(string(somaxconn)))))
	r, _ := handlerRouter(t)
	shim, _ := shimPair(t, r)
	app := appListener(t, netip.MustParseAddrPort("0.0.0.0:0"), true)
	reply := callWith(t, shim, listenRequest(1, 5), app)
	if reply.Type != protocol.TypeListenOK || len(reply.FDs) != 1 {
		t.Fatalf("LISTEN: %v %q, %d fds", reply.Type, reply.Text, len(reply.FDs))
	}
	// A listener's tcp_info gives its backlog in tcpi_sacked.
	info, err := unix.GetsockoptTCPInfo(reply.FDs[0], unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	if int(info.Sacked) != want {
		t.Errorf("host listener of an app listening with backlog 5: backlog %d, want %d", info.Sacked, want)
	}
}
