package protocol

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzDecode checks that no input makes the decoders panic, and that
// whatever Decode accepts encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(Message{Type: TypeHello, ID: 1}.Encode())
	f.Add(Message{Type: TypePool, ID: 2, Payload: Uint32Payload(32)}.Encode())
	f.Add(Message{Type: TypeListen, ID: 3, Payload: Uint32Payload(128)}.Encode())
	f.Add(Message{Type: TypeError, ID: 4, Payload: ErrorPayload(1, "x")}.Encode())
	clients, _ := EncodeClients([]Mapping{{Overlay: netip.MustParseAddrPort("198.19.2.2:40000"), Host: netip.MustParseAddrPort("198.18.0.2:40000")}})
	f.Add(Message{Type: TypeClients, ID: PeerFeatureClients, Payload: clients[0]}.Encode())
	f.Add([]byte("SLIM"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatalf("accepted % x but re-encodes as % x", b, m.Encode())
		}
		// The payload decoders must refuse or accept without panicking.
		_, _ = PoolCount(m.Payload)
		_, _ = ListenBacklog(m.Payload)
		_, _ = DecodeHello(m.Payload)
		_, _ = DecodeListener(m.Payload)
		_, _, _ = DecodeErrorPayload(m.Payload)
		_, _, _ = DecodeDirectory(m.Payload)
		_, _ = DecodeDirectoryAck(m.Payload)
		_, _, _ = DecodeClients(m.Payload)
		_, _ = DecodePreamble(m.Payload)
	})
}
