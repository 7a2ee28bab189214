package protocol

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Mapping pairs an overlay address with the host address standing for it:
// a listener in a DIRECTORY, a client's connection in a CLIENTS list.
type Mapping struct {
	Overlay netip.AddrPort
	Host    netip.AddrPort
	// Flags are a listener's directory slot flags (which families of
	// clients it takes, router/directory); 0 in a CLIENTS list.
	Flags uint16
}

// mappingSize is the encoded size of a Mapping.
const mappingSize = 12

// directoryHeader is a DIRECTORY payload's version (u64) and count (u32).
const directoryHeader = 12

// MaxMappings is the most mappings one DIRECTORY message carries.
const MaxMappings = (MaxFramePayload - directoryHeader) / mappingSize

// EncodeDirectory encodes a DIRECTORY payload: the sender's directory
// version, which the receiver acknowledges, and its mappings. It returns an
// error if the mappings do not fit in one message.
func EncodeDirectory(version uint64, mappings []Mapping) ([]byte, error) {
	if len(mappings) > MaxMappings {
		return nil, fmt.Errorf("%d mappings exceed the %d a DIRECTORY message holds", len(mappings), MaxMappings)
	}
	b := binary.LittleEndian.AppendUint64(nil, version)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(mappings)))
	for _, m := range mappings {
		b = append(b, Listener{Overlay: m.Overlay, Host: m.Host}.Encode()...)
	}
	return b, nil
}

// DecodeDirectory parses a DIRECTORY payload.
func DecodeDirectory(b []byte) (uint64, []Mapping, error) {
	return DecodeDirectoryOf(b, 0)
}

// DecodeDirectoryOf parses a DIRECTORY payload of a frame whose ID holds
// features: with PeerFeatureFamilies the mappings are followed by their
// flags (EncodeDirectoryFamilies).
func DecodeDirectoryOf(b []byte, features uint32) (uint64, []Mapping, error) {
	if len(b) < directoryHeader {
		return 0, nil, payloadError(TypeDirectory, len(b), directoryHeader)
	}
	version := binary.LittleEndian.Uint64(b)
	n := binary.LittleEndian.Uint32(b[8:])
	end := directoryHeader + int(n)*mappingSize
	families := features&PeerFeatureFamilies != 0
	if n > MaxMappings || (!families && len(b) != end) || (families && len(b) < end+4) {
		return 0, nil, fmt.Errorf("%w: DIRECTORY of %d mappings in %d bytes", ErrMalformed, n, len(b))
	}
	mappings := make([]Mapping, n)
	for i := range mappings {
		at := directoryHeader + i*mappingSize
		l, _ := DecodeListener(b[at : at+mappingSize])
		mappings[i] = Mapping{Overlay: l.Overlay, Host: l.Host}
	}
	if families {
		if err := decodeFamilies(b[end:], mappings); err != nil {
			return 0, nil, err
		}
	}
	return version, mappings, nil
}

// PeerFeatureFamilies, set in the ID of a frame between routers, says the
// sender understands directory flags: its DIRECTORY payloads end with
// the flags of the mappings that have any (docs/protocol.md §5).
const PeerFeatureFamilies uint32 = 1 << 1

// EncodeDirectoryFamilies is EncodeDirectory for a peer that announced
// PeerFeatureFamilies: after the mappings, u32 count M, then M × (u16
// index of a mapping, u16 its flags), in increasing index order.
func EncodeDirectoryFamilies(version uint64, mappings []Mapping) ([]byte, error) {
	b, err := EncodeDirectory(version, mappings)
	if err != nil {
		return nil, err
	}
	var flagged []int
	for i, m := range mappings {
		if m.Flags != 0 {
			flagged = append(flagged, i)
		}
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(flagged)))
	for _, i := range flagged {
		b = binary.LittleEndian.AppendUint16(b, uint16(i))
		b = binary.LittleEndian.AppendUint16(b, mappings[i].Flags)
	}
	if len(b) > MaxFramePayload {
		return nil, fmt.Errorf("%d mappings with %d flagged exceed a DIRECTORY message", len(mappings), len(flagged))
	}
	return b, nil
}

// decodeFamilies applies the flags trailer of a DIRECTORY to mappings.
func decodeFamilies(b []byte, mappings []Mapping) error {
	m := binary.LittleEndian.Uint32(b)
	if len(b) != 4+int(m)*4 {
		return fmt.Errorf("%w: DIRECTORY flags of %d mappings in %d bytes", ErrMalformed, m, len(b))
	}
	last := -1
	for k := range int(m) {
		i := int(binary.LittleEndian.Uint16(b[4+4*k:]))
		flags := binary.LittleEndian.Uint16(b[6+4*k:])
		if i <= last || i >= len(mappings) || flags == 0 || flags&^DirFlagsKnown != 0 ||
			(flags&DirFlagNoIPv4 != 0 && flags&DirFlagIPv6 == 0) {
			return fmt.Errorf("%w: DIRECTORY flags %#x of mapping %d", ErrMalformed, flags, i)
		}
		mappings[i].Flags, last = flags, i
	}
	return nil
}

// Directory slot flags (router/directory, docs/protocol.md §2): which
// families of clients a listener takes.
const (
	DirFlagIPv6   uint16 = 1 << 0
	DirFlagNoIPv4 uint16 = 1 << 1
	DirFlagsKnown        = DirFlagIPv6 | DirFlagNoIPv4
)

// ForLegacyPeer is what a peer without PeerFeatureFamilies may be told:
// IPv6-only listeners left out (it would send IPv4 clients to them), the
// flags of the others dropped (its shims send IPv6 clients over the
// overlay).
func ForLegacyPeer(mappings []Mapping) []Mapping {
	out := make([]Mapping, 0, len(mappings))
	for _, m := range mappings {
		if m.Flags&DirFlagNoIPv4 == 0 {
			out = append(out, Mapping{Overlay: m.Overlay, Host: m.Host})
		}
	}
	return out
}

// EncodeDirectoryAck encodes a DIRECTORY_ACK payload: the version of the
// directory the receiver has published to its shims.
func EncodeDirectoryAck(version uint64) []byte { return binary.LittleEndian.AppendUint64(nil, version) }

// DecodeDirectoryAck parses a DIRECTORY_ACK payload.
func DecodeDirectoryAck(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, payloadError(TypeDirectoryAck, len(b), 8)
	}
	return binary.LittleEndian.Uint64(b), nil
}
