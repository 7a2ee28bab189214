package sockdiag

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

const sockDestroy = 21 // SOCK_DESTROY

// Destroy aborts a TCP socket of this network namespace, as
// `ss --kill` does: the kernel resets the connection (the peer sees a
// reset) and its owner's next call fails with ECONNABORTED. It needs
// CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY.
func Destroy(s Socket) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, destroyRequest(s), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("SOCK_DESTROY %v: %w", s.Local, err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("SOCK_DESTROY %v: %w", s.Local, err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil || len(msgs) == 0 || msgs[0].Header.Type != unix.NLMSG_ERROR || len(msgs[0].Data) < 4 {
		return fmt.Errorf("SOCK_DESTROY %v: unexpected reply", s.Local)
	}
	if code := int32(binary.LittleEndian.Uint32(msgs[0].Data)); code != 0 {
		return fmt.Errorf("SOCK_DESTROY %v -> %v: %w", s.Local, s.Remote, unix.Errno(-code))
	}
	return nil
}

// destroyRequest names one socket exactly: addresses, ports and cookie.
func destroyRequest(s Socket) []byte {
	family := s.Family
	if family == 0 {
		family = unix.AF_INET
	}
	b := diagRequest(sockDestroy, unix.NLM_F_REQUEST|unix.NLM_F_ACK, 0xffffffff, family) // any state
	le := binary.LittleEndian
	id := b[unix.NLMSG_HDRLEN+8:]
	binary.BigEndian.PutUint16(id[0:], s.Local.Port())
	binary.BigEndian.PutUint16(id[2:], s.Remote.Port())
	copy(id[4:], diagAddr(s.Local.Addr(), family))
	copy(id[20:], diagAddr(s.Remote.Addr(), family))
	le.PutUint32(id[40:], uint32(s.Cookie))
	le.PutUint32(id[44:], uint32(s.Cookie>>32))
	return b
}

// diagAddr is an address as struct inet_diag_sockid holds it for a family:
// 4 bytes for AF_INET, 16 (IPv4 v4-mapped) for AF_INET6.
func diagAddr(a netip.Addr, family uint8) []byte {
	if family == unix.AF_INET6 {
		b := a.As16()
		return b[:]
	}
	b := a.As4()
	return b[:]
}
