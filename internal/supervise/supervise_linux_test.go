package supervise

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/seccompnotif"
	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/protocol"
)

func TestConfigRoundTrip(t *testing.T) {
	c := Config{RouterSock: "/run/slim/router.sock", Secure: true, TimeoutMS: 250}
	got, err := DecodeConfig(c.Encode())
	if err != nil || got != c {
		t.Fatalf("DecodeConfig(Encode(%+v)) = %+v, %v", c, got, err)
	}
	if got.timeout() != 250*time.Millisecond || (Config{}).timeout() != 500*time.Millisecond {
		t.Errorf("timeouts %v, %v", got.timeout(), Config{}.timeout())
	}
	for _, bad := range []string{"", "{", `{"secure":true}`, `[1]`} {
		if _, err := DecodeConfig([]byte(bad)); err == nil {
			t.Errorf("DecodeConfig(%q) accepted", bad)
		}
	}
}

func TestTraps(t *testing.T) {
	for _, secure := range []bool{false, true} {
		names := 0
		for _, tr := range Traps(secure) {
			c := lookup(tr.Arch, int32(tr.Nr))
			switch c {
			case callGetsockname, callGetpeername:
				names++
			case callConnect:
				if tr.Arg != connectLenArg || len(tr.Values) != 2 || tr.Values[0] != sockaddrInSize || tr.Values[1] != sockaddrInet6Size {
					t.Errorf("connect trap %+v: want sockaddr_in and sockaddr_in6 lengths only", tr)
				}
			case callDup:
				if isFcntl(entry{tr.Arch, tr.Nr, c}) != (tr.Arg == fcntlCmdArg) {
					t.Errorf("dup trap %+v: only fcntl looks at its command", tr)
				}
			case 0:
				t.Errorf("trap %+v is no call of the supervisor's", tr)
			}
		}
		if secure != (names == 0) {
			t.Errorf("secure %v: %d name traps (secure mode's programs answer them)", secure, names)
		}
	}
	if lookup(unix.AUDIT_ARCH_X86_64, 0) != 0 {
		t.Errorf("read taken for a socket call")
	}
}

func TestSockaddrRoundTrip(t *testing.T) {
	a := netip.MustParseAddrPort("198.19.1.2:8080")
	got, ok := parseSockaddrIn(sockaddrIn(a))
	if !ok || got != a {
		t.Errorf("parseSockaddrIn(sockaddrIn(%v)) = %v, %v", a, got, ok)
	}
	six := make([]byte, 28)
	six[0] = unix.AF_INET6
	if _, ok := parseSockaddrIn(six); ok {
		t.Errorf("an IPv6 address taken for IPv4")
	}
}

// TestSockaddrInet6: IPv4 on an AF_INET6 socket is shown as the kernel
// shows it (28 bytes, ::ffff: and the address, flowinfo and scope id 0)
// and read back unmapped; a real IPv6 address stays IPv6, and an AF_INET6
// socket's unspecified address reads as ::.
func TestSockaddrInet6(t *testing.T) {
	a := netip.MustParseAddrPort("198.19.1.2:8080")
	b := sockaddrOf(a, true)
	want := []byte{unix.AF_INET6, 0, 0x1f, 0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 19, 1, 2, 0, 0, 0, 0}
	if !bytes.Equal(b, want) {
		t.Errorf("sockaddrOf(%v, inet6) = % x, want % x", a, b, want)
	}
	if got, ok := parseSockaddr(b); !ok || got != a {
		t.Errorf("parseSockaddr(sockaddr_in6 of %v) = %v, %v", a, got, ok)
	}
	if got, ok := parseSockaddr(sockaddrOf(a, false)); !ok || got != a {
		t.Errorf("parseSockaddr(sockaddr_in of %v) = %v, %v", a, got, ok)
	}
	six := netip.MustParseAddrPort("[2001:2::1]:9")
	if got, ok := parseSockaddr(sockaddrIn6(six)); !ok || got != six {
		t.Errorf("parseSockaddr(sockaddr_in6 of %v) = %v, %v", six, got, ok)
	}
	if got, ok := parseSockaddr(make([]byte, 16)); ok {
		t.Errorf("an AF_UNSPEC address read as %v", got)
	}
	if ipv6, counted := v6Destination(six); !ipv6 || !counted {
		t.Errorf("v6Destination(%v) = %v, %v", six, ipv6, counted)
	}
	if ipv6, _ := v6Destination(a); ipv6 {
		t.Errorf("v6Destination(%v): IPv4 taken for IPv6", a)
	}
	if _, counted := v6Destination(netip.MustParseAddrPort("[::1]:9")); counted {
		t.Errorf("a connect to ::1 counted as left alone")
	}
}

// TestLocalAddrDualStack: a dual-stack socket's bound addresses read as
// the supervisor decides on them.
func TestLocalAddrDualStack(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no AF_INET6: %v", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.MustParseAddr("::ffff:127.0.0.1").As16()}); err != nil {
		t.Fatal(err)
	}
	got, err := localAddr(fd)
	if err != nil || got.Addr() != netip.MustParseAddr("127.0.0.1") || got.Port() == 0 {
		t.Errorf("localAddr of a socket bound to ::ffff:127.0.0.1 = %v, %v", got, err)
	}
	info, err := inspect(fd)
	if err != nil || !info.tcp || !info.inet6 || info.v6only {
		t.Errorf("inspect of a dual-stack socket: %+v, %v", info, err)
	}
}

func TestEpollEventData(t *testing.T) {
	ev := epollEvent(unix.EPOLLIN|unix.EPOLLET, 0x1122334455667788)
	if ev.Events != unix.EPOLLIN|unix.EPOLLET || epollData(ev) != 0x1122334455667788 {
		t.Errorf("epoll event %+v: data %#x", ev, epollData(ev))
	}
}

func pipe(t *testing.T) [2]int {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p
}

func epollInstance(t *testing.T) int {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(ep) })
	return ep
}

// TestWitness: the witness forgets a file once its last descriptor is
// closed, and only then.
func TestWitness(t *testing.T) {
	ep := epollInstance(t)
	p := pipe(t)
	other, err := unix.Dup(p[0])
	if err != nil {
		t.Fatal(err)
	}
	ev := epollEvent(0, 42)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, other, &ev); err != nil {
		t.Fatal(err)
	}
	if live, err := witnessed(ep); err != nil || !live[42] {
		t.Fatalf("witnessed = %v, %v; want 42", live, err)
	}
	unix.Close(other) // p[0] still holds the file
	if live, _ := witnessed(ep); !live[42] {
		t.Errorf("forgotten while another descriptor holds the file")
	}
	unix.Close(p[0])
	if live, _ := witnessed(ep); live[42] {
		t.Errorf("still listed after the last descriptor closed")
	}
}

// TestRegistrations finds an epoll registration with kcmp and reads it
// from fdinfo, in this process.
func TestRegistrations(t *testing.T) {
	if !kcmpEpoll() {
		t.Skip("no kcmp(KCMP_EPOLL_TFD)")
	}
	ep := epollInstance(t)
	p := pipe(t)
	ev := epollEvent(unix.EPOLLIN|unix.EPOLLET, 0xfeedface)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, p[0], &ev); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Fstat(p[0], &st)
	var x epollIndex
	regs, err := x.registrations(unix.Gettid(), p[0], st.Ino)
	// The kernel adds EPOLLERR and EPOLLHUP to every registration.
	want := registration{epfd: ep, events: ev.Events | unix.EPOLLERR | unix.EPOLLHUP, data: 0xfeedface}
	if err != nil || len(regs) != 1 || regs[0] != want {
		t.Fatalf("registrations = %+v, %v", regs, err)
	}
	if regs, err := x.registrations(unix.Gettid(), p[1], st.Ino); err != nil || len(regs) != 0 {
		t.Errorf("the pipe's other end: %+v, %v; want none", regs, err)
	}
}

// TestEpollMover swaps a file under a registered number, as ADDFD with
// SETFD does in a program, and moves the registration: the new file's
// events come with the old registration's data, under the same number.
func TestEpollMover(t *testing.T) {
	mover := moverOrSkip(t)
	ep := epollInstance(t)
	old, new := pipe(t), pipe(t)
	n, err := unix.Dup(old[0]) // the program's number
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(n)
	ev := epollEvent(unix.EPOLLIN, 7)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, n, &ev); err != nil {
		t.Fatal(err)
	}
	if err := unix.Dup3(new[0], n, unix.O_CLOEXEC); err != nil { // the swap
		t.Fatal(err)
	}
	epCopy, _ := unix.Dup(ep)
	defer unix.Close(epCopy)
	regs := []registration{{epfd: ep, events: unix.EPOLLIN, data: 7}}
	if err := mover.move(n, regs, []int{epCopy}, old[0], new[0]); err != nil {
		t.Fatal(err)
	}
	if found, err := registered(unix.Gettid(), ep, n); err != nil || !found {
		t.Fatalf("the new file is not registered under %d: %v, %v", n, found, err)
	}
	unix.Write(old[1], []byte("x"))
	unix.Write(new[1], []byte("y"))
	events := make([]unix.EpollEvent, 4)
	got, err := unix.EpollWait(ep, events, 1000)
	if err != nil || got != 1 || epollData(events[0]) != 7 {
		t.Fatalf("epoll_wait = %d, %v, %+v; want one event with data 7 (the old file's registration gone)", got, err, events[:max(got, 0)])
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, n, nil); err != nil {
		t.Errorf("the program's DEL under its number: %v", err)
	}
}

func TestFdFlags(t *testing.T) {
	p := pipe(t)
	plain, _ := unix.Dup(p[0])
	defer unix.Close(plain)
	if err := setNonblock(p[1], true); err != nil {
		t.Fatal(err)
	}
	r := &request{n: seccompnotif.Notif{Pid: uint32(unix.Gettid())}, pidfd: -1}
	var st, st1 unix.Stat_t
	unix.Fstat(p[0], &st)
	unix.Fstat(p[1], &st1)
	for _, c := range []struct {
		fd                int
		ino               uint64
		cloexec, nonblock bool
	}{{p[0], st.Ino, true, false}, {plain, st.Ino, false, false}, {p[1], st1.Ino, true, true}} {
		flags, ino, err := r.fdFlags(c.fd)
		cloexec, nonblock := flags&unix.O_CLOEXEC != 0, flags&unix.O_NONBLOCK != 0
		if err != nil || cloexec != c.cloexec || nonblock != c.nonblock || ino != c.ino {
			t.Errorf("fd %d: close-on-exec %v, non-blocking %v, inode %d, %v; want %v, %v, %d", c.fd, cloexec, nonblock, ino, err, c.cloexec, c.nonblock, c.ino)
		}
	}
}

func TestSignalPending(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if signalPending(unix.Gettid()) {
		t.Errorf("a signal pending for this thread")
	}
}

// tcpPair is a connected pair of loopback TCP sockets.
func tcpPair(t *testing.T) (int, int) {
	l, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	unix.Listen(l, 1)
	sa, _ := unix.Getsockname(l)
	c, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err := unix.Connect(c, sa); err != nil {
		t.Fatal(err)
	}
	a, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(a); unix.Close(c) })
	return a, c
}

func TestReadPreamble(t *testing.T) {
	pre := protocol.Preamble{Client: netip.MustParseAddrPort("198.19.2.2:4000"), Server: netip.MustParseAddrPort("198.19.1.2:80")}
	server, client := tcpPair(t)
	b := pre.Encode()
	unix.Write(client, b[:7])
	go func(client int) { time.Sleep(20 * time.Millisecond); unix.Write(client, b[7:]) }(client)
	got, err := readPreamble(server)
	if err != nil || got != pre {
		t.Errorf("readPreamble = %+v, %v; want %+v", got, err, pre)
	}
	server, client = tcpPair(t)
	unix.Write(client, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if _, err := readPreamble(server); err == nil {
		t.Errorf("an HTTP request taken for a preamble")
	}
	server, client = tcpPair(t)
	unix.Write(client, b[:5])
	unix.Shutdown(client, unix.SHUT_WR)
	if _, err := readPreamble(server); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("a short preamble: %v", err)
	}
}

func TestCopyOptions(t *testing.T) {
	socket := func() int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	defaults := readOptions(socket())
	app, host := socket(), socket()
	unix.SetsockoptInt(app, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	unix.SetsockoptInt(app, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	unix.SetsockoptInt(app, unix.SOL_SOCKET, unix.SO_SNDBUF, 65536)
	if err := copyOptions(app, host, defaults); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct{ level, name int }{
		{unix.IPPROTO_TCP, unix.TCP_NODELAY}, {unix.SOL_SOCKET, unix.SO_KEEPALIVE}, {unix.SOL_SOCKET, unix.SO_SNDBUF},
	} {
		a, _ := unix.GetsockoptInt(app, o.level, o.name)
		h, _ := unix.GetsockoptInt(host, o.level, o.name)
		if a != h {
			t.Errorf("option %d/%d: app %d, host %d", o.level, o.name, a, h)
		}
	}
	if os.Geteuid() == 0 {
		bound := socket()
		if err := unix.SetsockoptString(bound, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "lo"); err != nil {
			t.Fatal(err)
		}
		if err := copyOptions(bound, socket(), defaults); err != errUnreplayable {
			t.Errorf("a socket bound to a device: %v, want errUnreplayable", err)
		}
	}
}

func TestDirectoryLookup(t *testing.T) {
	dir := t.TempDir()
	table, err := directory.Open(filepath.Join(dir, "directory"), 64, netip.MustParsePrefix("198.19.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	overlay, host := netip.MustParseAddrPort("198.19.1.2:80"), netip.MustParseAddrPort("198.18.0.1:31000")
	if err := table.Publish([]directory.Entry{{Overlay: overlay, Host: host}}); err != nil {
		t.Fatal(err)
	}
	d := newDirectory(filepath.Join(dir, "router.sock"), nil)
	if got, ok := d.lookup(overlay); !ok || got != host {
		t.Errorf("lookup(%v) = %v, %v; want %v", overlay, got, ok, host)
	}
	if _, ok := d.lookup(netip.MustParseAddrPort("198.19.1.2:81")); ok {
		t.Errorf("a port without a listener found")
	}
	table.Publish(nil)
	if _, ok := d.lookup(overlay); ok {
		t.Errorf("a withdrawn listener found")
	}
}

func TestSharedSockets(t *testing.T) {
	var s sharedSockets
	s.add(1)
	if !s.has(1) || s.has(2) {
		t.Errorf("shared sockets: 1 %v, 2 %v", s.has(1), s.has(2))
	}
	for i := range uint64(maxShared) {
		s.add(i + 10)
	}
	if len(s.cookies) > maxShared {
		t.Errorf("%d remembered, at most %d", len(s.cookies), maxShared)
	}
}

// TestWaitsOn: the supervisor sees how a process waits on a listener:
// registered with epoll, or a thread blocked in poll or select with it
// among the descriptors to read; a listener nobody waits on shows nothing.
func TestWaitsOn(t *testing.T) {
	listener := func() int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		if err := unix.Listen(fd, 1); err != nil {
			t.Fatal(err)
		}
		return fd
	}
	// This thread's file table: the leader's may be an epoll mover's
	// own (another test's).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid := unix.Gettid()
	idle := listener()
	if how := waitsOn(pid, idle); how != "" {
		t.Errorf("a listener nobody waits on: %q", how)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	registered := listener()
	ev := epollEvent(unix.EPOLLIN, 1)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, registered, &ev); err != nil {
		t.Fatal(err)
	}
	if how := waitsOn(pid, registered); how != "epoll" {
		t.Errorf("a listener registered with epoll: %q", how)
	}
	for _, c := range []struct {
		want string
		wait func(fd int)
	}{
		{"poll", func(fd int) { unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 3000) }},
		{"select", func(fd int) {
			var set unix.FdSet
			set.Set(fd)
			unix.Select(fd+1, &set, nil, nil, &unix.Timeval{Sec: 3})
		}},
	} {
		fd := listener()
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.wait(fd)
		}()
		how := ""
		for deadline := time.Now().Add(2 * time.Second); how == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			how = waitsOn(pid, fd)
		}
		if how != c.want {
			t.Errorf("a thread blocked in %s on the listener: %q", c.want, how)
		}
		// Wake the waiter: a connection makes the listener readable.
		conn, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		sa, _ := unix.Getsockname(fd)
		unix.Connect(conn, sa)
		<-done
		unix.Close(conn)
	}
}

// moverOrSkip makes an epoll mover, skipping the test on a kernel without
// kcmp(KCMP_EPOLL_TFD), which the supervisor needs.
func moverOrSkip(t *testing.T) *epollMover {
	t.Helper()
	if !kcmpEpoll() {
		t.Skip("no kcmp(KCMP_EPOLL_TFD)")
	}
	mover, err := newEpollMover()
	if err != nil {
		t.Fatal(err)
	}
	return mover
}
