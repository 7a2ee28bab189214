package namebook

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// NameForm is how a connection's overlay addresses are shown to its
// application: the shim's getsockname, getpeername and accept give them in
// this form (docs/datapath.md, "AF_INET6 sockets", "IPv6 overlay
// addresses").
type NameForm uint8

// Name forms.
const (
	// FormIPv4 is a sockaddr_in: an AF_INET socket's.
	FormIPv4 NameForm = 0
	// FormMapped is a sockaddr_in6 with the v4-mapped overlay addresses:
	// an AF_INET6 socket that carries IPv4.
	FormMapped NameForm = 1
	// FormIPv6 is a sockaddr_in6 with the IPv6 overlay addresses (the /96
	// and the IPv4 address): a connection made to an IPv6 overlay address.
	FormIPv6 NameForm = 2
)

// NamesSize is the size of an entry's names.
const NamesSize = 16

// Names are the overlay addresses an accelerated connection shows its
// application, IPv4 (an IPv6 overlay address is the IPv4 one in
// FormIPv6).
type Names struct {
	Local, Peer netip.AddrPort
	Form        NameForm
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed names")

// Encode returns the names' bytes: u32 local IP, u16 local port, u16 peer
// port, u32 peer IP (all nbo), u8 form, u8[3] 0.
func (n Names) Encode() []byte {
	b := make([]byte, NamesSize)
	a, p := n.Local.Addr().As4(), n.Peer.Addr().As4()
	copy(b, a[:])
	binary.BigEndian.PutUint16(b[4:], n.Local.Port())
	binary.BigEndian.PutUint16(b[6:], n.Peer.Port())
	copy(b[8:], p[:])
	b[12] = byte(n.Form)
	return b
}

// DecodeNames parses names: of their size, a known form, the reserved
// bytes zero.
func DecodeNames(b []byte) (Names, error) {
	if len(b) != NamesSize {
		return Names{}, fmt.Errorf("%w: %d bytes, want %d", ErrMalformed, len(b), NamesSize)
	}
	if b[12] > byte(FormIPv6) {
		return Names{}, fmt.Errorf("%w: form %d is none of 0 (IPv4), 1 (v4-mapped), 2 (IPv6 overlay)", ErrMalformed, b[12])
	}
	if b[13] != 0 || b[14] != 0 || b[15] != 0 {
		return Names{}, fmt.Errorf("%w: reserved bytes are not zero", ErrMalformed)
	}
	return Names{
		Local: netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[0:4])), binary.BigEndian.Uint16(b[4:])),
		Peer:  netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[8:12])), binary.BigEndian.Uint16(b[6:])),
		Form:  NameForm(b[12]),
	}, nil
}
