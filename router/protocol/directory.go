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
	if len(b) < directoryHeader {
		return 0, nil, payloadError(TypeDirectory, len(b), directoryHeader)
	}
	version := binary.LittleEndian.Uint64(b)
	n := binary.LittleEndian.Uint32(b[8:])
	if n > MaxMappings || len(b) != directoryHeader+int(n)*mappingSize {
		return 0, nil, fmt.Errorf("%w: DIRECTORY of %d mappings in %d bytes", ErrMalformed, n, len(b))
	}
	mappings := make([]Mapping, n)
	for i := range mappings {
		at := directoryHeader + i*mappingSize
		l, _ := DecodeListener(b[at : at+mappingSize])
		mappings[i] = Mapping(l)
	}
	return version, mappings, nil
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
