package supervise

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockInfo is what the supervisor reads of a socket before it decides.
type sockInfo struct {
	tcp4   bool   // AF_INET, SOCK_STREAM, TCP or MPTCP
	netns  uint64 // cookie of its network namespace
	cookie uint64
	state  uint8 // TCP state (TCP_INFO), for tcp4
}

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
	info.tcp4 = domain == unix.AF_INET && typ == unix.SOCK_STREAM &&
		(proto == unix.IPPROTO_TCP || proto == unix.IPPROTO_MPTCP)
	if info.netns, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE); err != nil {
		return info, err
	}
	if info.cookie, err = unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE); err != nil {
		return info, err
	}
	if info.tcp4 {
		ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return info, err
		}
		info.state = ti.State
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

// localAddr is an IPv4 socket's bound address. One getsockname, raw:
// unix.Getsockname also asks an IPv4 socket for its protocol (L2TP), a
// second system call on every connect.
func localAddr(fd int) (netip.AddrPort, error) {
	var sa unix.RawSockaddrInet4
	size := uint32(unsafe.Sizeof(sa))
	_, _, errno := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&size)))
	if errno != 0 {
		return netip.AddrPort{}, errno
	}
	if sa.Family != unix.AF_INET || size < uint32(unsafe.Sizeof(sa)) {
		return netip.AddrPort{}, unix.EAFNOSUPPORT
	}
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port), nil
}

// sockaddrIn is struct sockaddr_in's bytes for an address.
func sockaddrIn(a netip.AddrPort) []byte {
	b := make([]byte, sockaddrInSize)
	binary.LittleEndian.PutUint16(b, unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], a.Port())
	ip := a.Addr().As4()
	copy(b[4:], ip[:])
	return b
}

// parseSockaddrIn reads struct sockaddr_in; false if it is another family.
func parseSockaddrIn(b []byte) (netip.AddrPort, bool) {
	if len(b) < sockaddrInSize || binary.LittleEndian.Uint16(b) != unix.AF_INET {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:])), true
}

func toSockaddr(a netip.AddrPort) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Addr: a.Addr().As4(), Port: int(a.Port())}
}

func fromSockaddr(sa unix.Sockaddr) (netip.AddrPort, bool) {
	in, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)), true
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
