package protocol

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Preamble constants.
const (
	PreambleMagic   = 0x504d4c53 // the bytes "SLMP"
	PreambleVersion = 1
	PreambleSize    = 20
	// PreambleFlagIPv6 (byte 5): the client connected to the server's
	// IPv6 overlay address; both are shown to the apps in that form.
	PreambleFlagIPv6 = 1
)

// Preamble is the first bytes of an accelerated connection: who connects to
// whom on the overlay. The server's shim strips it before accept returns.
type Preamble struct {
	Client netip.AddrPort
	Server netip.AddrPort
	IPv6   bool // PreambleFlagIPv6
}

// Encode returns the preamble's bytes.
func (p Preamble) Encode() []byte {
	b := make([]byte, PreambleSize)
	binary.LittleEndian.PutUint32(b, PreambleMagic)
	b[4] = PreambleVersion
	if p.IPv6 {
		b[5] = PreambleFlagIPv6
	}
	putAddr(b[8:], p.Client.Addr())
	putPort(b[12:], p.Client.Port())
	putAddr(b[14:], p.Server.Addr())
	putPort(b[18:], p.Server.Port())
	return b
}

// DecodePreamble parses and checks a preamble.
func DecodePreamble(b []byte) (Preamble, error) {
	if len(b) != PreambleSize {
		return Preamble{}, fmt.Errorf("%w: preamble has %d bytes, want %d", ErrMalformed, len(b), PreambleSize)
	}
	if m := binary.LittleEndian.Uint32(b); m != PreambleMagic || b[4] != PreambleVersion {
		return Preamble{}, fmt.Errorf("%w: preamble magic %#08x version %d", ErrMalformed, m, b[4])
	}
	if b[5]&^PreambleFlagIPv6 != 0 {
		return Preamble{}, fmt.Errorf("%w: preamble flags %#x", ErrMalformed, b[5])
	}
	return Preamble{
		Client: netip.AddrPortFrom(getAddr(b[8:]), getPort(b[12:])),
		Server: netip.AddrPortFrom(getAddr(b[14:]), getPort(b[18:])),
		IPv6:   b[5]&PreambleFlagIPv6 != 0,
	}, nil
}
