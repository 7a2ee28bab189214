package protocol

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Mapping maps an overlay listener to the host listener standing for it.
type Mapping struct {
	Overlay netip.AddrPort
	Host    netip.AddrPort
}

// mappingSize is the encoded size of a Mapping.
const mappingSize = 12

// MaxMappings is the most mappings one DIRECTORY message carries.
const MaxMappings = (MaxFramePayload - 4) / mappingSize

// EncodeDirectory encodes a DIRECTORY payload. It returns an error if the
// mappings do not fit in one message.
func EncodeDirectory(mappings []Mapping) ([]byte, error) {
	if len(mappings) > MaxMappings {
		return nil, fmt.Errorf("%d mappings exceed the %d a DIRECTORY message holds", len(mappings), MaxMappings)
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(mappings)))
	for _, m := range mappings {
		b = append(b, Listener{Overlay: m.Overlay, Host: m.Host}.Encode()...)
	}
	return b, nil
}

// DecodeDirectory parses a DIRECTORY payload.
func DecodeDirectory(b []byte) ([]Mapping, error) {
	if len(b) < 4 {
		return nil, payloadError(TypeDirectory, len(b), 4)
	}
	n := binary.LittleEndian.Uint32(b)
	if n > MaxMappings || len(b) != 4+int(n)*mappingSize {
		return nil, fmt.Errorf("%w: DIRECTORY of %d mappings in %d bytes", ErrMalformed, n, len(b))
	}
	mappings := make([]Mapping, n)
	for i := range mappings {
		l, _ := DecodeListener(b[4+i*mappingSize : 4+(i+1)*mappingSize])
		mappings[i] = Mapping(l)
	}
	return mappings, nil
}
