package supervise

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockInfo is what the supervisor reads of a socket before it decides.
type sockInfo struct {
	tcp    bool   // AF_INET or AF_INET6, SOCK_STREAM, TCP or MPTCP
	inet6  bool   // AF_INET6
	v6only bool   // IPV6_V6ONLY, for inet6: it carries no IPv4
	netns  uint64 // cookie of its network namespace
	cookie uint64
	state  uint8 // TCP state (TCP_INFO), for tcp
}

// ipv4 says whether the socket is TCP that may carry IPv4: AF_INET, or
// AF_INET6 without IPV6_V6ONLY (dual-stack, v4-mapped addresses).
func (i sockInfo) ipv4() bool { return i.tcp && !i.v6only }

// inspect reads a socket; an error means it is no socket.
func inspect(fd int) (sockInfo, error) {
	var info sockInfo
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return info, err
	}
	typ, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	proto, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	// Go listens with Multipath TCP by default (Go 1.24): its sockets
	// speak TCP to peers that do not, as host sockets are.
	info.inet6 = domain == unix.AF_INET6
	info.tcp = (domain == unix.AF_INET || info.inet6) && typ == unix.SOCK_STREAM &&
		(proto == unix.IPPROTO_TCP || proto == unix.IPPROTO_MPTCP)
	if info.netns, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE); err != nil {
		return info, err
	}
	if info.cookie, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE); err != nil {
		return info, err
	}
	if info.tcp {
		ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return info, err
		}
		info.state = ti.State
	}
	if info.tcp && info.inet6 {
		v, err := unix.GetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		if err != nil {
			return info, err
		}
		info.v6only = v != 0
	}
	return info, nil
}

// socketCookie returns a socket's cookie, 0 for anything else.
func socketCookie(fd int) uint64 {
	c, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		return 0
	}
	return c
}

// TCP states of struct tcp_info.
const (
	tcpClose  = 7
	tcpListen = 10
)

// localAddr is a TCP socket's bound address, IPv4 ones unmapped (an
// AF_INET6 socket's ::ffff:a.b.c.d is a.b.c.d; its :: stays ::). One
// getsockname, raw: unix.Getsockname also asks an IPv4 socket for its
// protocol (L2TP), a second system call on every connect.
func localAddr(fd int) (netip.AddrPort, error) {
	var sa unix.RawSockaddrAny
	size := uint32(unsafe.Sizeof(sa))
	_, _, errno := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&size)))
	if errno != 0 {
		return netip.AddrPort{}, errno
	}
	a, ok := parseSockaddr(unsafe.Slice((*byte)(unsafe.Pointer(&sa)), min(size, uint32(unsafe.Sizeof(sa)))))
	if !ok {
		return netip.AddrPort{}, unix.EAFNOSUPPORT
	}
	return a, nil
}

// sockaddrInet6Size is sizeof(struct sockaddr_in6).
const sockaddrInet6Size = 28

// sockaddrIn is struct sockaddr_in's bytes for an address.
func sockaddrIn(a netip.AddrPort) []byte {
	b := make([]byte, sockaddrInSize)
	binary.LittleEndian.PutUint16(b, unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], a.Port())
	ip := a.Addr().As4()
	copy(b[4:], ip[:])
	return b
}

// sockaddrIn6 is struct sockaddr_in6's bytes for an address (an IPv4 one
// v4-mapped), flowinfo and scope id 0: what the kernel shows of IPv4 on an
// AF_INET6 socket.
func sockaddrIn6(a netip.AddrPort) []byte {
	b := make([]byte, sockaddrInet6Size)
	binary.LittleEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], a.Port())
	ip := a.Addr().As16() // v4-mapped for an IPv4 address
	copy(b[8:], ip[:])
	return b
}

// sockaddrOf is an IPv4 address as the kernel writes it for a socket of
// the family: sockaddr_in, or on an AF_INET6 socket the v4-mapped
// sockaddr_in6.
func sockaddrOf(a netip.AddrPort, inet6 bool) []byte {
	if inet6 {
		return sockaddrIn6(a)
	}
	return sockaddrIn(a)
}

// parseSockaddr reads struct sockaddr_in or sockaddr_in6, a v4-mapped
// address unmapped; false if it is another family or too short.
func parseSockaddr(b []byte) (netip.AddrPort, bool) {
	if len(b) < 2 {
		return netip.AddrPort{}, false
	}
	switch binary.LittleEndian.Uint16(b) {
	case unix.AF_INET:
		return parseSockaddrIn(b)
	case unix.AF_INET6:
		if len(b) < sockaddrInet6Size {
			return netip.AddrPort{}, false
		}
		ip := netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		if scope := binary.LittleEndian.Uint32(b[24:]); scope != 0 && ip.Is6() {
			ip = ip.WithZone(fmt.Sprint(scope))
		}
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[2:])), true
	}
	return netip.AddrPort{}, false
}

// parseSockaddrIn reads struct sockaddr_in; false if it is another family.
func parseSockaddrIn(b []byte) (netip.AddrPort, bool) {
	if len(b) < sockaddrInSize || binary.LittleEndian.Uint16(b) != unix.AF_INET {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:])), true
}

// toSockaddr is an IPv4 address for a socket of the family (v4-mapped on
// AF_INET6).
func toSockaddr(a netip.AddrPort, inet6 bool) unix.Sockaddr {
	if inet6 {
		return &unix.SockaddrInet6{Addr: a.Addr().As16(), Port: int(a.Port())}
	}
	return &unix.SockaddrInet4{Addr: a.Addr().As4(), Port: int(a.Port())}
}

// anyAddr is the unspecified address of the family with port.
func anyAddr(port uint16, inet6 bool) unix.Sockaddr {
	if inet6 {
		return &unix.SockaddrInet6{Port: int(port)}
	}
	return &unix.SockaddrInet4{Port: int(port)}
}

// acceptRaw accepts a connection from fd and returns it with the peer's
// address as the kernel wrote it.
func acceptRaw(fd, flags int) (int, []byte, error) {
	var sa unix.RawSockaddrAny
	size := uint32(unsafe.Sizeof(sa))
	conn, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&size)), uintptr(flags), 0, 0)
	if errno != 0 {
		return -1, nil, errno
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&sa)), min(size, uint32(unsafe.Sizeof(sa))))
	return int(conn), append([]byte(nil), raw...), nil
}

// peerAddr is a connected socket's peer, an IPv4 one unmapped.
func peerAddr(fd int) (netip.AddrPort, error) {
	var sa unix.RawSockaddrAny
	size := uint32(unsafe.Sizeof(sa))
	_, _, errno := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&size)))
	if errno != 0 {
		return netip.AddrPort{}, errno
	}
	a, ok := parseSockaddr(unsafe.Slice((*byte)(unsafe.Pointer(&sa)), min(size, uint32(unsafe.Sizeof(sa)))))
	if !ok {
		return netip.AddrPort{}, unix.EAFNOSUPPORT
	}
	return a, nil
}

// setNonblock sets or clears O_NONBLOCK on a file.
func setNonblock(fd int, on bool) error {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		fl |= unix.O_NONBLOCK
	} else {
		fl &^= unix.O_NONBLOCK
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
	return err
}

// setOwnNonblock sets the file status flags of a socket the supervisor
// made or accepted itself (a pool socket, an accepted connection), which
// has no other status flag: one fcntl instead of setNonblock's two.
func setOwnNonblock(fd int, on bool) error {
	fl := 0
	if on {
		fl = unix.O_NONBLOCK
	}
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
	return err
}

func nonblocking(fd int) (bool, error) {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return fl&unix.O_NONBLOCK != 0, err
}

// closeReset closes a TCP socket with a reset: no TIME_WAIT left behind.
func closeReset(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(fd)
}
