package protocol

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	m := Message{Type: TypePool, ID: 7, Payload: Uint32Payload(32)}
	got, err := Decode(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != m.Type || got.ID != m.ID || !bytes.Equal(got.Payload, m.Payload) {
		t.Fatalf("round trip: got %+v, want %+v", got, m)
	}
	if n, err := PoolCount(got.Payload); err != nil || n != 32 {
		t.Errorf("PoolCount = %d, %v", n, err)
	}
}

func TestHeaderLayout(t *testing.T) {
	b := Message{Type: TypeHello, ID: 0x01020304}.Encode()
	want := []byte{'S', 'L', 'I', 'M', 1, 0, 1, 0, 4, 3, 2, 1, 0, 0, 0, 0}
	if !bytes.Equal(b, want) {
		t.Errorf("HELLO encodes as % x, want % x", b, want)
	}
}

func TestDecodeRefusals(t *testing.T) {
	good := Message{Type: TypeHello, ID: 9}.Encode()
	mutate := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name  string
		input []byte
		want  string
		hasID bool
	}{
		{"empty", nil, "shorter than", false},
		{"short", good[:10], "shorter than", false},
		{"magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b }), "bad magic", false},
		{"version", mutate(func(b []byte) []byte { b[4] = 2; return b }), "version 2", true},
		{"unknown type", mutate(func(b []byte) []byte { b[6] = 0x33; return b }), "unknown type", true},
		{"length too big", mutate(func(b []byte) []byte { b[13] = 0xff; return b }), "exceeds", true},
		{"length mismatch", mutate(func(b []byte) []byte { b[12] = 4; return b }), "header says 4", true},
		{"trailing bytes", append(append([]byte(nil), good...), 1, 2), "message has 2", true},
	}
	for _, tt := range tests {
		_, err := Decode(tt.input)
		var de *DecodeError
		if !errors.As(err, &de) || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: error %v is not a DecodeError", tt.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || de.HasID != tt.hasID {
			t.Errorf("%s: got %v (HasID %v), want %q (HasID %v)", tt.name, err, de.HasID, tt.want, tt.hasID)
		}
		if de.HasID && de.ID != 9 {
			t.Errorf("%s: ID %d, want 9", tt.name, de.ID)
		}
	}
}

func TestPayloads(t *testing.T) {
	hello := Hello{Addr: netip.MustParseAddr("198.19.1.2"), Overlay: netip.MustParsePrefix("198.19.0.0/16")}
	if got, err := DecodeHello(hello.Encode()); err != nil || got != hello {
		t.Errorf("Hello round trip: %+v, %v", got, err)
	}
	l := Listener{Overlay: netip.MustParseAddrPort("198.19.1.2:80"), Host: netip.MustParseAddrPort("198.18.0.1:40001")}
	if got, err := DecodeListener(l.Encode()); err != nil || got != l {
		t.Errorf("Listener round trip: %+v, %v", got, err)
	}
	pub := Publish{Overlay: netip.MustParseAddrPort("198.19.1.2:80")}
	if b := pub.Encode(); !bytes.Equal(b, []byte{198, 19, 1, 2, 0, 80, 0, 0}) {
		t.Errorf("Publish layout: % x", b)
	}
	if got, err := DecodePublish(pub.Encode()); err != nil || got != pub {
		t.Errorf("Publish round trip: %+v, %v", got, err)
	}
	for _, bad := range [][]byte{{198, 19, 1, 2, 0, 80}, {198, 19, 1, 2, 0, 80, 0, 1}} {
		if _, err := DecodePublish(bad); err == nil {
			t.Errorf("PUBLISH payload % x accepted", bad)
		}
	}
	errno, text, err := DecodeErrorPayload(ErrorPayload(13, "not a registered container"))
	if err != nil || errno != 13 || text != "not a registered container" {
		t.Errorf("Error round trip: %d %q %v", errno, text, err)
	}
	for _, n := range []uint32{0, MaxPool + 1} {
		if _, err := PoolCount(Uint32Payload(n)); err == nil {
			t.Errorf("PoolCount(%d) accepted", n)
		}
	}
	if _, err := PoolCount([]byte{1}); err == nil {
		t.Error("short POOL payload accepted")
	}
}

func TestPoolRequestFamily(t *testing.T) {
	for _, f := range []PoolFamily{PoolInet, PoolInet6} {
		n, got, err := PoolRequest(PoolPayload(7, f))
		if err != nil || n != 7 || got != f {
			t.Errorf("PoolRequest(PoolPayload(7, %d)) = %d, %d, %v", f, n, got, err)
		}
	}
	if len(PoolPayload(7, PoolInet)) != 4 {
		t.Error("an AF_INET POOL request is not the 4-byte form older routers read")
	}
	bad := append(Uint32Payload(7), Uint32Payload(1)...)
	if _, _, err := PoolRequest(bad); err == nil {
		t.Error("POOL family 1 (AF_UNIX) accepted")
	}
}

func TestPreambleLayout(t *testing.T) {
	p := Preamble{Client: netip.MustParseAddrPort("198.19.2.2:40000"), Server: netip.MustParseAddrPort("198.19.1.2:80")}
	b := p.Encode()
	want := []byte{'S', 'L', 'M', 'P', 1, 0, 0, 0, 198, 19, 2, 2, 0x9c, 0x40, 198, 19, 1, 2, 0, 80}
	if !bytes.Equal(b, want) {
		t.Fatalf("preamble % x, want % x", b, want)
	}
	if got, err := DecodePreamble(b); err != nil || got != p {
		t.Errorf("preamble round trip: %+v, %v", got, err)
	}
	b[0] = 'X'
	if _, err := DecodePreamble(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad preamble magic accepted: %v", err)
	}
}

func TestDirectoryPayload(t *testing.T) {
	ms := []Mapping{
		{Overlay: netip.MustParseAddrPort("198.19.1.2:80"), Host: netip.MustParseAddrPort("198.18.0.1:40001")},
		{Overlay: netip.MustParseAddrPort("198.19.1.3:11211"), Host: netip.MustParseAddrPort("198.18.0.1:40002")},
	}
	b, err := EncodeDirectory(7, ms)
	if err != nil {
		t.Fatal(err)
	}
	version, got, err := DecodeDirectory(b)
	if err != nil || version != 7 || len(got) != 2 || got[0] != ms[0] || got[1] != ms[1] {
		t.Errorf("directory round trip: %d %+v, %v", version, got, err)
	}
	if _, _, err := DecodeDirectory(b[:len(b)-1]); err == nil {
		t.Error("truncated directory accepted")
	}
	if _, err := EncodeDirectory(1, make([]Mapping, MaxMappings+1)); err == nil {
		t.Error("oversized directory encoded")
	}
	if v, err := DecodeDirectoryAck(EncodeDirectoryAck(9)); err != nil || v != 9 {
		t.Errorf("ack round trip: %d, %v", v, err)
	}
}
