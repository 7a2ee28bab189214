package protocol

import (
	"encoding/binary"
	"fmt"
)

// A CLIENTS list tells a peer router which containers of the sender own
// the client ends of the accelerated connections the peer serves: one
// Mapping per connection, Host the client's host socket address (what the
// peer's sock_diag shows as the remote end) and Overlay the container's
// address for it. A list longer than one frame holds is sent as several
// CLIENTS messages, each but the last flagged ClientsMore.
const (
	// clientsHeader is a CLIENTS payload's flags (u16), reserved u16 and
	// count (u32).
	clientsHeader = 8
	// ClientsMore flags a CLIENTS message whose list goes on in the next.
	ClientsMore uint16 = 1 << 0
	// MaxClientsPerMessage is the most mappings one CLIENTS message holds.
	MaxClientsPerMessage = (MaxFramePayload - clientsHeader) / mappingSize
	// MaxClients is the most mappings of one list, over all its messages;
	// a sender leaves the rest out, a receiver refuses longer lists.
	MaxClients = 1 << 16
)

// PeerFeatureClients, set in the ID of a frame between routers, says the
// sender understands CLIENTS. Routers that predate it send ID 0 and drop
// the connection on a frame of a type they do not know, so a router sends
// CLIENTS only to a peer whose frames carry this bit.
const PeerFeatureClients uint32 = 1 << 0

// EncodeClients encodes a list as the payloads of as many CLIENTS
// messages as it needs (one, empty, for an empty list). It returns an
// error if the list exceeds MaxClients.
func EncodeClients(list []Mapping) ([][]byte, error) {
	if len(list) > MaxClients {
		return nil, fmt.Errorf("%d client mappings exceed the %d a CLIENTS list holds", len(list), MaxClients)
	}
	var payloads [][]byte
	for {
		n := min(len(list), MaxClientsPerMessage)
		var flags uint16
		if n < len(list) {
			flags = ClientsMore
		}
		payloads = append(payloads, clientsPayload(flags, list[:n]))
		if list = list[n:]; len(list) == 0 {
			return payloads, nil
		}
	}
}

// clientsPayload encodes one CLIENTS message.
func clientsPayload(flags uint16, list []Mapping) []byte {
	b := make([]byte, 0, clientsHeader+len(list)*mappingSize)
	b = binary.LittleEndian.AppendUint16(b, flags)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(list)))
	for _, m := range list {
		b = append(b, Listener{Overlay: m.Overlay, Host: m.Host}.Encode()...)
	}
	return b
}

// DecodeClients parses one CLIENTS payload: its part of the list, and
// whether the list goes on in the next CLIENTS message.
func DecodeClients(b []byte) (list []Mapping, more bool, err error) {
	if len(b) < clientsHeader {
		return nil, false, payloadError(TypeClients, len(b), clientsHeader)
	}
	le := binary.LittleEndian
	flags, reserved, n := le.Uint16(b), le.Uint16(b[2:]), le.Uint32(b[4:])
	if flags&^ClientsMore != 0 || reserved != 0 {
		return nil, false, fmt.Errorf("%w: CLIENTS flags %#x, reserved %#x", ErrMalformed, flags, reserved)
	}
	if n > MaxClientsPerMessage || len(b) != clientsHeader+int(n)*mappingSize {
		return nil, false, fmt.Errorf("%w: CLIENTS of %d mappings in %d bytes", ErrMalformed, n, len(b))
	}
	list = make([]Mapping, n)
	for i := range list {
		at := clientsHeader + i*mappingSize
		l, _ := DecodeListener(b[at : at+mappingSize])
		list[i] = Mapping{Overlay: l.Overlay, Host: l.Host}
	}
	return list, flags&ClientsMore != 0, nil
}
