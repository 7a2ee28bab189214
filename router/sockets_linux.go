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

// newPoolSocket creates an unconnected host TCP socket for a client. TCP
// Fast Open without cookie lets its preamble ride in the SYN;
// TCP_FASTOPEN_CONNECT makes connect() only pick the local port, so the
// preamble, which names that port, leaves with the first send. Both are
// set here, once per socket, off the application's connect path.
func newPoolSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("creating host socket: %w", err)
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
	addr    netip.AddrPort // port 0: the kernel picks one
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
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
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
		{unix.IPPROTO_TCP, unix.TCP_FASTOPEN, max(spec.backlog, 16), "TCP_FASTOPEN"},
		{unix.IPPROTO_TCP, tcpFastOpenNoCookie, 1, "TCP_FASTOPEN_NO_COOKIE"},
		{unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1, "TCP_DEFER_ACCEPT"},
	}
	for _, o := range options {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return fail(o.what, err)
		}
	}
	if err := copyListenerOptions(spec.app, fd); err != nil {
		return fail("options", err)
	}
	if spec.mark != nil {
		if err := spec.mark(fd); err != nil {
			return fail("secure mode", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: spec.addr.Addr().As4(), Port: int(spec.addr.Port())}); err != nil {
		return fail("bind "+spec.addr.String(), err)
	}
	if err := unix.Listen(fd, spec.backlog); err != nil {
		return fail("listen", err)
	}
	bound, err := localAddr(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	return fd, bound, nil
}

// localAddr is an IPv4 socket's bound address.
func localAddr(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	in4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return netip.AddrPort{}, errors.New("not an IPv4 socket")
	}
	return netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)), nil
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

// checkTCPListener verifies that fd is a listening IPv4 TCP socket (or
// Multipath TCP, which Go programs listen with by default: it accepts
// plain TCP connections).
func checkTCPListener(fd int) error {
	checks := []struct {
		name, want int
		what       string
	}{
		{unix.SO_DOMAIN, unix.AF_INET, "an IPv4 socket"},
		{unix.SO_TYPE, unix.SOCK_STREAM, "a stream socket"},
		{unix.SO_PROTOCOL, unix.IPPROTO_TCP, "a TCP socket"},
		{unix.SO_ACCEPTCONN, 1, "listening"},
	}
	for _, c := range checks {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, c.name)
		if err != nil {
			return fmt.Errorf("not a socket: %w", err)
		}
		if v != c.want && !(c.name == unix.SO_PROTOCOL && v == unix.IPPROTO_MPTCP) {
			return fmt.Errorf("the socket is not %s", c.what)
		}
	}
	return nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
