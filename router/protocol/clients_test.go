package protocol

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// clientList is n mappings of clients on 198.18.0.2 in 198.19.2.0/24.
func clientList(n int) []Mapping {
	list := make([]Mapping, n)
	for i := range list {
		list[i] = Mapping{
			Overlay: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 2, byte(2 + i%200)}), uint16(30000+i)),
			Host:    netip.AddrPortFrom(netip.MustParseAddr("198.18.0.2"), uint16(30000+i)),
		}
	}
	return list
}

// decodeAll decodes a list's payloads as a receiver does, checking that
// every payload but the last says more follow.
func decodeAll(t *testing.T, payloads [][]byte) []Mapping {
	t.Helper()
	var list []Mapping
	for i, p := range payloads {
		part, more, err := DecodeClients(p)
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if more != (i < len(payloads)-1) {
			t.Fatalf("part %d of %d says more = %v", i, len(payloads), more)
		}
		list = append(list, part...)
	}
	return list
}

func TestClientsRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3, MaxClientsPerMessage, MaxClientsPerMessage + 1, MaxClients} {
		list := clientList(n)
		payloads, err := EncodeClients(list)
		if err != nil {
			t.Fatalf("%d mappings: %v", n, err)
		}
		if want := max(1, (n+MaxClientsPerMessage-1)/MaxClientsPerMessage); len(payloads) != want {
			t.Errorf("%d mappings in %d messages, want %d", n, len(payloads), want)
		}
		for _, p := range payloads {
			if len(p) > MaxFramePayload {
				t.Fatalf("%d mappings: a payload of %d bytes exceeds a frame", n, len(p))
			}
		}
		if got := decodeAll(t, payloads); !slices.Equal(got, list) && n > 0 {
			t.Errorf("%d mappings: round trip differs", n)
		}
	}
	if _, err := EncodeClients(clientList(MaxClients + 1)); err == nil {
		t.Error("a list over MaxClients was encoded")
	}
}

func TestClientsLayout(t *testing.T) {
	payloads, _ := EncodeClients([]Mapping{{
		Overlay: netip.MustParseAddrPort("198.19.2.2:40000"), Host: netip.MustParseAddrPort("198.18.0.2:40001"),
	}})
	want := []byte{
		0, 0, 0, 0, 1, 0, 0, 0, // flags, reserved, count
		198, 19, 2, 2, 0x9c, 0x40, 0x9c, 0x41, 198, 18, 0, 2, // as LISTEN_OK
	}
	if len(payloads) != 1 || !bytes.Equal(payloads[0], want) {
		t.Errorf("CLIENTS payload % x, want % x", payloads, want)
	}
}

func TestClientsMalformed(t *testing.T) {
	good, _ := EncodeClients(clientList(2))
	p := good[0]
	with := func(at int, v byte) []byte { b := bytes.Clone(p); b[at] = v; return b }
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short":        p[:7],
		"truncated":    p[:len(p)-1],
		"long":         append(bytes.Clone(p), 0),
		"unknown flag": with(0, 2),
		"reserved":     with(2, 1),
		"count":        with(4, 3),
		"huge count":   with(7, 0xff),
	} {
		if list, _, err := DecodeClients(b); !errors.Is(err, ErrMalformed) || list != nil {
			t.Errorf("%s: %v, %v; want malformed and no list", name, list, err)
		}
	}
}

func TestUnknownTypeIsSkippable(t *testing.T) {
	b := Message{Type: TypeClients, ID: PeerFeatureClients}.Encode()
	b[6] = 0x43 // a type this version does not define
	_, err := DecodeFrame(b)
	if !IsUnknownType(err) || !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown type: %v; want a skippable malformed error", err)
	}
	b[12] = 1 // and a length that does not match
	if _, err := DecodeFrame(b); IsUnknownType(err) {
		t.Errorf("a frame of the wrong length is not merely of an unknown type: %v", err)
	}
	if m, err := DecodeFrame(Message{Type: TypeClients}.Encode()); err != nil || m.Type.String() != "CLIENTS" {
		t.Errorf("CLIENTS frame: %v, %v", m.Type, err)
	}
}
