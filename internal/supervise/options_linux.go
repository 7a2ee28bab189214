package supervise

import (
	"bytes"
	"encoding/binary"
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// option is a socket option the supervisor carries from the program's
// socket to the host socket.
type option struct {
	level, name int
	size        int  // bytes getsockopt returns
	halved      bool // SO_SNDBUF, SO_RCVBUF: the kernel reports twice what was set
}

// carried are the options a program may have set before connect that a
// host socket takes too (secure mode's allowlist has them all).
var carried = []option{
	{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 4, false},
	{unix.SOL_SOCKET, unix.SO_SNDBUF, 4, true},
	{unix.SOL_SOCKET, unix.SO_RCVBUF, 4, true},
	{unix.SOL_SOCKET, unix.SO_LINGER, 8, false},
	{unix.SOL_SOCKET, unix.SO_RCVLOWAT, 4, false},
	{unix.SOL_SOCKET, unix.SO_RCVTIMEO, 16, false},
	{unix.SOL_SOCKET, unix.SO_SNDTIMEO, 16, false},
	{unix.SOL_SOCKET, unix.SO_OOBINLINE, 4, false},
	{unix.SOL_SOCKET, unix.SO_PRIORITY, 4, false},
	{unix.SOL_SOCKET, unix.SO_REUSEADDR, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_NODELAY, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_MAXSEG, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_CORK, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_SYNCNT, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_LINGER2, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, 4, false},
	{unix.IPPROTO_TCP, unix.TCP_CONGESTION, 16, false},
	{unix.IPPROTO_IP, unix.IP_TOS, 4, false},
	{unix.IPPROTO_IP, unix.IP_TTL, 4, false},
	// An AF_INET6 socket's (an AF_INET one has none: getsockopt fails).
	{unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 4, false},
	{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 4, false},
}

// errUnreplayable says the program's socket has state a host socket cannot
// take: it stays on the overlay.
var errUnreplayable = errors.New("the socket has options a host socket cannot take")

// optionValues are a socket's values of the carried options.
type optionValues [][]byte

// readOptions reads the carried options of a socket.
func readOptions(fd int) optionValues {
	values := make(optionValues, len(carried))
	for i, o := range carried {
		values[i] = getsockopt(fd, o.level, o.name, o.size)
	}
	return values
}

// copyOptions sets on host the options whose value on app differs from a
// fresh socket's (defaults): those the program set. An option a socket
// cannot have carried (a device binding, a filter) or that host refuses
// makes errUnreplayable.
func copyOptions(app, host int, defaults optionValues) error {
	if dev := getsockopt(app, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, unix.IFNAMSIZ); len(bytes.TrimRight(dev, "\x00")) > 0 {
		return errUnreplayable
	}
	if n, err := unix.GetsockoptInt(app, unix.SOL_SOCKET, unix.SO_GET_FILTER); err == nil && n > 0 {
		return errUnreplayable
	}
	var buf [16]byte // the largest carried option's size
	for i, o := range carried {
		if defaults[i] == nil {
			continue // not an option of this family (IPV6_* on AF_INET)
		}
		v := getsockoptInto(app, o.level, o.name, buf[:o.size])
		if v == nil || bytes.Equal(v, defaults[i]) {
			continue
		}
		if o.halved {
			binary.LittleEndian.PutUint32(v, binary.LittleEndian.Uint32(v)/2)
		}
		if o.name == unix.TCP_CONGESTION && o.level == unix.IPPROTO_TCP {
			v = bytes.TrimRight(v, "\x00")
		}
		if err := setsockopt(host, o.level, o.name, v); err != nil {
			return errUnreplayable
		}
	}
	return nil
}

func getsockopt(fd, level, name, size int) []byte {
	return getsockoptInto(fd, level, name, make([]byte, size))
}

// getsockoptInto reads an option into b; nil if the socket has none.
func getsockoptInto(fd, level, name int, b []byte) []byte {
	n := uint32(len(b))
	// Raw: getsockopt does not block, and a connect makes some thirty.
	_, _, errno := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name),
		uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return nil
	}
	return b[:n]
}

func setsockopt(fd, level, name int, v []byte) error {
	if len(v) == 0 {
		return unix.EINVAL
	}
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(name),
		uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
