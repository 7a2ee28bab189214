package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// TCP states, in the kernel's numbering.
const (
	Established = 1
	SynSent     = 2
	SynRecv     = 3
	FinWait1    = 4
	FinWait2    = 5
	TimeWait    = 6
	Close       = 7
	CloseWait   = 8
	LastAck     = 9
	Listen      = 10
	Closing     = 11
)

// Live selects every state but TIME_WAIT, CLOSE and the request minisocks.
const Live = 1<<Established | 1<<SynSent | 1<<SynRecv | 1<<FinWait1 | 1<<FinWait2 |
	1<<CloseWait | 1<<LastAck | 1<<Listen | 1<<Closing

// Socket is one TCP socket as the kernel reports it.
type Socket struct {
	// Family is AF_INET or AF_INET6. An AF_INET6 socket's v4-mapped
	// addresses (::ffff:a.b.c.d) are given as IPv4 addresses.
	Family        uint8
	Cookie        uint64
	State         uint8
	Local, Remote netip.AddrPort
	// From tcp_info (zero for listeners and when absent).
	BytesReceived, BytesAcked uint64
	RTT                       time.Duration
	// Storage is the socket's value in the BPF socket-storage map asked
	// for (TCPWithStorage), nil if it has none.
	Storage []byte
}

const (
	tcpDiagGetSock   = 18 // TCPDIAG_GETSOCK: struct inet_diag_req, both families
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	inetDiagInfo     = 2  // INET_DIAG_INFO attribute
	reqSize          = 56 // struct inet_diag_req_v2
	reqV1Size        = 60 // struct inet_diag_req
	msgSize          = 72 // struct inet_diag_msg
)

// TCP lists the TCP sockets, IPv4 and IPv6, whose state is in the states
// bitmask (1<<state for each state wanted, e.g. Live). Host sockets that
// stand for an application's AF_INET6 socket are AF_INET6 ones on
// v4-mapped addresses.
//
// Both families come from one dump: the kernel walks its connection hash
// table, shared by every network namespace and holding every TIME_WAIT
// socket of the machine, once per dump, so a dump per family cost two
// walks (docs/datapath.md "Where a new connection's time goes"). The
// request is the older TCPDIAG_GETSOCK, which the kernel answers for both
// families; a kernel that refuses it gets a dump per family.
func TCP(states uint32) ([]Socket, error) {
	both, err := dump(bothFamiliesRequest(states))
	if err == nil {
		return both, nil
	}
	v4, err := dump(request(states, unix.AF_INET))
	if err != nil {
		return nil, err
	}
	v6, err := dump(request(states, unix.AF_INET6))
	if err != nil {
		return nil, err
	}
	return append(v4, v6...), nil
}

// TCPWithStorage is TCP, IPv4 and IPv6 sockets, with each socket's value
// in a BPF_MAP_TYPE_SK_STORAGE map (given by fd) in Storage. Secure mode's
// AF_INET6 host sockets (v4-mapped) carry state as AF_INET ones do.
func TCPWithStorage(states uint32, mapFD int) ([]Socket, error) {
	v4, err := dump(withStorageRequest(request(states, unix.AF_INET), mapFD))
	if err != nil {
		return nil, err
	}
	v6, err := dump(withStorageRequest(request(states, unix.AF_INET6), mapFD))
	if err != nil {
		return nil, err
	}
	return append(v4, v6...), nil
}

func dump(req []byte) ([]Socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag request: %w", err)
	}
	var sockets []Socket
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("sock_diag reply: %w", err)
		}
		done, err := parseMessages(buf[:n], &sockets)
		if err != nil || done {
			return sockets, err
		}
	}
}

// request builds the netlink dump request for TCP of a family with tcp_info.
func request(states uint32, family uint8) []byte {
	b := diagRequest(sockDiagByFamily, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, states, family)
	b[unix.NLMSG_HDRLEN+2] = 1 << (inetDiagInfo - 1) // idiag_ext: ask for INET_DIAG_INFO
	return b
}

// bothFamiliesRequest builds a TCPDIAG_GETSOCK dump request (struct
// inet_diag_req) for the states given, with tcp_info: the kernel answers it
// with the sockets of both families, in one walk of its tables.
func bothFamiliesRequest(states uint32) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+reqV1Size)
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(len(b)))
	le.PutUint16(b[4:], tcpDiagGetSock)
	le.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	req := b[unix.NLMSG_HDRLEN:]
	req[0] = unix.AF_INET            // idiag_family: unused by a dump
	req[3] = 1 << (inetDiagInfo - 1) // idiag_ext: INET_DIAG_INFO
	le.PutUint32(req[52:], states)   // idiag_states, after the 48-byte id
	return b
}

// diagRequest is a netlink message of the given type holding a TCP
// struct inet_diag_req_v2 of a family for the states given (a bitmask).
func diagRequest(msgType, flags uint16, states uint32, family uint8) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+reqSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(len(b)))
	le.PutUint16(b[4:], msgType)
	le.PutUint16(b[6:], flags)
	req := b[unix.NLMSG_HDRLEN:]
	req[0] = family
	req[1] = unix.IPPROTO_TCP
	le.PutUint32(req[4:], states)
	return b
}

// parseMessages decodes one datagram of netlink messages; done is set at
// the end of the dump.
func parseMessages(b []byte, out *[]Socket) (done bool, err error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return false, fmt.Errorf("sock_diag reply: %w", err)
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(m.Data) >= 4 {
				if code := int32(binary.LittleEndian.Uint32(m.Data)); code != 0 {
					return true, fmt.Errorf("sock_diag: %w", unix.Errno(-code))
				}
			}
			return true, errors.New("sock_diag: error reply")
		case sockDiagByFamily, tcpDiagGetSock:
			if s, ok := parseSocket(m.Data); ok {
				*out = append(*out, s)
			}
		}
	}
	return false, nil
}

// parseSocket decodes a struct inet_diag_msg and its attributes.
func parseSocket(b []byte) (Socket, bool) {
	if len(b) < msgSize || (b[0] != unix.AF_INET && b[0] != unix.AF_INET6) {
		return Socket{}, false
	}
	be, le := binary.BigEndian, binary.LittleEndian
	addr := func(raw []byte) netip.Addr {
		if b[0] == unix.AF_INET {
			return netip.AddrFrom4([4]byte(raw[:4]))
		}
		return netip.AddrFrom16([16]byte(raw[:16])).Unmap()
	}
	s := Socket{
		Family: b[0],
		State:  b[1],
		Local:  netip.AddrPortFrom(addr(b[8:24]), be.Uint16(b[4:])),
		Remote: netip.AddrPortFrom(addr(b[24:40]), be.Uint16(b[6:])),
		Cookie: uint64(le.Uint32(b[44:])) | uint64(le.Uint32(b[48:]))<<32,
	}
	for attrs := b[msgSize:]; len(attrs) >= 4; {
		size, kind := int(le.Uint16(attrs)), le.Uint16(attrs[2:])
		if size < 4 || size > len(attrs) {
			break
		}
		switch kind &^ unix.NLA_F_NESTED {
		case inetDiagInfo:
			s.addTCPInfo(attrs[4:size])
		case inetDiagSkBPFStorages:
			s.Storage = storageValue(attrs[4:size])
		}
		aligned := (size + 3) &^ 3
		if aligned > len(attrs) {
			break
		}
		attrs = attrs[aligned:]
	}
	return s, true
}

// Offsets in struct tcp_info (stable kernel ABI).
const (
	offRTT           = 68
	offBytesAcked    = 120
	offBytesReceived = 128
)

func (s *Socket) addTCPInfo(info []byte) {
	le := binary.LittleEndian
	if len(info) >= offRTT+4 {
		s.RTT = time.Duration(le.Uint32(info[offRTT:])) * time.Microsecond
	}
	if len(info) >= offBytesReceived+8 {
		s.BytesAcked = le.Uint64(info[offBytesAcked:])
		s.BytesReceived = le.Uint64(info[offBytesReceived:])
	}
}
