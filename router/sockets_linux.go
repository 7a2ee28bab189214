package router

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// Socket options not (yet) named by x/sys/unix.
const (
	tcpFastOpenNoCookie = 34     // TCP_FASTOPEN_NO_COOKIE
	siocgskns           = 0x894c // SIOCGSKNS: a socket's network namespace
)

// errClientFastOpenOff: the host has TCP Fast Open off for clients
// (net.ipv4.tcp_fastopen without bit 1), so pool sockets cannot carry the
// preamble in their SYN. A POOL request gets EOPNOTSUPP; the shim says so
// once and uses the overlay.
var errClientFastOpenOff = errors.New("TCP Fast Open is off for clients on this host (net.ipv4.tcp_fastopen)")

// newPoolSocket creates an unconnected host TCP socket of family (AF_INET,
// or AF_INET6 for an app's AF_INET6 socket that connects to a v4-mapped
// address: it connects to the host listener's v4-mapped address) for a
// client. TCP
// Fast Open without cookie lets its preamble ride in the SYN;
// TCP_FASTOPEN_CONNECT makes connect() only pick the local port, so the
// preamble, which names that port, leaves with the first send. Both are
// set here, once per socket, off the application's connect path.
func newPoolSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("creating host socket: %w", err)
	}
	if family == unix.AF_INET6 {
		// Carries IPv4 whatever net.ipv6.bindv6only says.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("clearing IPV6_V6ONLY on host socket: %w", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, tcpFastOpenNoCookie, 1); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("enabling TCP Fast Open on host socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT, 1); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EOPNOTSUPP) {
			return -1, errClientFastOpenOff
		}
		return -1, fmt.Errorf("enabling TCP_FASTOPEN_CONNECT on host socket: %w", err)
	}
	return fd, nil
}

// hostListenerSpec says how to make a host listener.
type hostListenerSpec struct {
	addr netip.AddrPort // port 0: the kernel picks one
	// family is AF_INET, or AF_INET6 for an app's AF_INET6 listener: bound
	// to addr v4-mapped, its accepted connections are AF_INET6 sockets as
	// the app's own would be.
	family  int
	backlog int
	// reusePort joins (or starts) an SO_REUSEPORT group, for applications
	// that run several listeners on one port.
	reusePort bool
	// app is the application's listener, whose options are copied.
	app int
	// mark, if set, runs before the socket listens (secure mode's state).
	mark func(fd int) error
}

// newHostListener creates a listener on the host address. Cookie-less Fast
// Open takes the client's preamble from the SYN; TCP_DEFER_ACCEPT makes sure
// it is there when accept returns.
func newHostListener(spec hostListenerSpec) (int, netip.AddrPort, error) {
	family := hostFamily(spec.family)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, netip.AddrPort{}, fmt.Errorf("creating host listener: %w", err)
	}
	fail := func(what string, err error) (int, netip.AddrPort, error) {
		unix.Close(fd)
		return -1, netip.AddrPort{}, fmt.Errorf("host listener: %s: %w", what, err)
	}
	reusePort := 0
	if spec.reusePort {
		reusePort = 1
	}
	options := []struct {
		level, name, value int
		what               string
	}{
		{unix.SOL_SOCKET, unix.SO_REUSEADDR, 1, "SO_REUSEADDR"},
		{unix.SOL_SOCKET, unix.SO_REUSEPORT, reusePort, "SO_REUSEPORT"},
		{unix.IPPROTO_TCP, unix.TCP_FASTOPEN, hostBacklog(spec.backlog), "TCP_FASTOPEN"},
		{unix.IPPROTO_TCP, tcpFastOpenNoCookie, 1, "TCP_FASTOPEN_NO_COOKIE"},
		{unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1, "TCP_DEFER_ACCEPT"},
	}
	if family == unix.AF_INET6 {
		options = append(options, struct {
			level, name, value int
			what               string
		}{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0, "IPV6_V6ONLY"})
	}
	for _, o := range options {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return fail(o.what, err)
		}
	}
	if err := copyListenerOptions(spec.app, fd, family); err != nil {
		return fail("options", err)
	}
	if spec.mark != nil {
		if err := spec.mark(fd); err != nil {
			return fail("secure mode", err)
		}
	}
	if err := unix.Bind(fd, sockaddrOf(spec.addr, family)); err != nil {
		return fail("bind "+spec.addr.String(), err)
	}
	if err := unix.Listen(fd, hostBacklog(spec.backlog)); err != nil {
		return fail("listen", err)
	}
	bound, err := localAddr(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	return fd, bound, nil
}

// minHostBacklog is the least backlog a host listener gets, whatever the
// app's (the kernel caps it at net.core.somaxconn, 4096 by default). Every
// accelerated client sends at least two segments, the preamble and then its
// own data; once a listener's queue of handshakes is as long as its backlog
// the kernel answers SYNs with syncookies, and when the accept queue is full
// too the handshake's last ACK is dropped, so the next segment finds no
// connection, fails the cookie check and is answered with a reset (the
// overlay's clients, one segment, are retransmitted later). A server that
// listens with a small backlog (Python's http.server: 5) behind a proxy
// under load had 1-2% of its proxied requests fail that way. The host
// listener is Slim's queue, not the app's: the app's backlog still bounds
// its own listener, which the overlay's clients use.
const minHostBacklog = 4096

// hostBacklog is the backlog of an app's host listener.
func hostBacklog(app int) int { return max(app, minHostBacklog) }

// sockaddrOf is an IPv4 address and port as a socket of family binds it:
// v4-mapped for AF_INET6.
func sockaddrOf(a netip.AddrPort, family int) unix.Sockaddr {
	if family == unix.AF_INET6 {
		return &unix.SockaddrInet6{Addr: a.Addr().As16(), Port: int(a.Port())}
	}
	return &unix.SockaddrInet4{Addr: a.Addr().As4(), Port: int(a.Port())}
}

// localAddr is a socket's bound IPv4 address: an AF_INET socket's, or an
// AF_INET6 socket's v4-mapped one.
func localAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
	case *unix.SockaddrInet6:
		if ip := netip.AddrFrom16(a.Addr); ip.Is4In6() {
			return netip.AddrPortFrom(ip.Unmap(), uint16(a.Port)), nil
		}
	}
	return netip.AddrPort{}, errors.New("not bound to an IPv4 address")
}

// appListenerAddr is the IPv4 address an app's listener accepts on
// (0.0.0.0 for all). An AF_INET6 listener carries IPv4 when it is bound
// to :: without IPV6_V6ONLY (0.0.0.0) or to a v4-mapped address; any
// other is an IPv6-only listener.
func appListenerAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	in6, ok := sa.(*unix.SockaddrInet6)
	if !ok {
		return localAddr(fd)
	}
	ip := netip.AddrFrom16(in6.Addr)
	switch {
	case ip.Is4In6():
		return netip.AddrPortFrom(ip.Unmap(), uint16(in6.Port)), nil
	case ip.IsUnspecified():
		v6only, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		if err != nil {
			return netip.AddrPort{}, err
		}
		if v6only == 0 {
			return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(in6.Port)), nil
		}
		return netip.AddrPort{}, errors.New("an IPV6_V6ONLY listener carries no IPv4")
	}
	return netip.AddrPort{}, fmt.Errorf("bound to the IPv6 address %s, which the IPv4 overlay does not carry", ip)
}

// socketCookie is the kernel's unique, never reused id of a socket.
func socketCookie(fd int) (uint64, error) {
	return unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
}

// socketNetns returns the inode of the network namespace a socket was
// created in.
func socketNetns(fd int) (uint64, error) {
	nsfd, err := unix.IoctlRetInt(fd, siocgskns)
	if err != nil {
		return 0, fmt.Errorf("SIOCGSKNS: %w", err)
	}
	defer unix.Close(nsfd)
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// checkTCPListener verifies that fd is a listening IPv4 or IPv6 TCP socket
// (or Multipath TCP, which Go programs listen with by default: it accepts
// plain TCP connections), and returns its family.
func checkTCPListener(fd int) (int, error) { return checkTCPSocket(fd, true) }

// checkTCPSocket verifies that fd is an IPv4 or IPv6 TCP socket (or
// Multipath TCP), listening if listening says so, and returns its family.
func checkTCPSocket(fd int, listening bool) (int, error) {
	family, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return 0, fmt.Errorf("not a socket: %w", err)
	}
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return 0, errors.New("the socket is not an IPv4 or IPv6 socket")
	}
	checks := []struct {
		name, want int
		what       string
	}{
		{unix.SO_TYPE, unix.SOCK_STREAM, "a stream socket"},
		{unix.SO_PROTOCOL, unix.IPPROTO_TCP, "a TCP socket"},
		{unix.SO_ACCEPTCONN, 1, "listening"},
	}
	for _, c := range checks {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, c.name)
		if err != nil {
			return 0, fmt.Errorf("not a socket: %w", err)
		}
		if c.name == unix.SO_ACCEPTCONN && !listening {
			continue
		}
		if v != c.want && !(c.name == unix.SO_PROTOCOL && v == unix.IPPROTO_MPTCP) {
			return 0, fmt.Errorf("the socket is not %s", c.what)
		}
	}
	return family, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
