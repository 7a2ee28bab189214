package protocol

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func familyMappings() []Mapping {
	h := netip.MustParseAddr("198.18.0.2")
	return []Mapping{
		{Overlay: netip.MustParseAddrPort("198.19.2.2:80"), Host: netip.AddrPortFrom(h, 40000)},
		{Overlay: netip.MustParseAddrPort("198.19.2.2:80"), Host: netip.AddrPortFrom(h, 40001), Flags: DirFlagIPv6 | DirFlagNoIPv4},
		{Overlay: netip.MustParseAddrPort("198.19.2.3:443"), Host: netip.AddrPortFrom(h, 40002), Flags: DirFlagIPv6},
	}
}

// TestDirectoryFamiliesRoundTrip: with PeerFeatureFamilies a DIRECTORY
// carries each mapping's flags; without it the flags are not read (and an
// older router's 12-byte form still decodes).
func TestDirectoryFamiliesRoundTrip(t *testing.T) {
	ms := familyMappings()
	b, err := EncodeDirectoryFamilies(9, ms)
	if err != nil {
		t.Fatal(err)
	}
	v, got, err := DecodeDirectoryOf(b, PeerFeatureClients|PeerFeatureFamilies)
	if err != nil || v != 9 || !slices.Equal(got, ms) {
		t.Fatalf("round trip: %v %v %v, want %v", v, got, err, ms)
	}
	if _, _, err := DecodeDirectoryOf(b, PeerFeatureClients); !errors.Is(err, ErrMalformed) {
		t.Errorf("a payload with flags decoded as one without: %v", err)
	}
	legacy, err := EncodeDirectory(9, ForLegacyPeer(ms))
	if err != nil {
		t.Fatal(err)
	}
	_, got, err = DecodeDirectory(legacy)
	want := []Mapping{{Overlay: ms[0].Overlay, Host: ms[0].Host}, {Overlay: ms[2].Overlay, Host: ms[2].Host}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("for an older peer: %v %v, want %v (the IPv6-only listener left out, no flags)", got, err, want)
	}
}

func TestDirectoryFamiliesMalformed(t *testing.T) {
	ms := familyMappings()
	good, _ := EncodeDirectoryFamilies(1, ms)
	end := directoryHeader + len(ms)*mappingSize
	for name, mutate := range map[string]func([]byte) []byte{
		"short trailer":          func(b []byte) []byte { return b[:len(b)-1] },
		"no trailer":             func(b []byte) []byte { return b[:end] },
		"unknown flag":           func(b []byte) []byte { b[end+6] = 4; return b },
		"no IPv4 without IPv6":   func(b []byte) []byte { b[end+6] = byte(DirFlagNoIPv4); return b },
		"index out of range":     func(b []byte) []byte { b[end+4] = 9; return b },
		"indices out of order":   func(b []byte) []byte { b[end+8] = 0; return b },
		"zero flags in trailer":  func(b []byte) []byte { b[end+6] = 0; return b },
		"trailer count too high": func(b []byte) []byte { b[end] = 3; return b },
	} {
		b := mutate(append([]byte(nil), good...))
		if _, _, err := DecodeDirectoryOf(b, PeerFeatureFamilies); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestHelloIPv6(t *testing.T) {
	h := Hello{Addr: netip.MustParseAddr("198.19.1.2"), Overlay: netip.MustParsePrefix("198.19.0.0/16"), IPv6: netip.MustParsePrefix("2001:2::/96")}
	b := h.Encode()
	if len(b) != 24 || b[9] != helloIPv6 {
		t.Fatalf("HELLO_OK with IPv6: % x", b)
	}
	if got, err := DecodeHello(b); err != nil || got != h {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	h.IPv6 = netip.Prefix{}
	if b := h.Encode(); len(b) != 12 {
		t.Errorf("HELLO_OK without IPv6 has %d bytes, want 12 (what older shims read)", len(b))
	}
	if _, err := DecodeHello(append(h.Encode()[:9], helloIPv6, 0, 0)); err == nil {
		t.Error("a HELLO_OK flagged IPv6 without the prefix decoded")
	}
}

func TestPublishFlags(t *testing.T) {
	p := Publish{Overlay: netip.MustParseAddrPort("198.19.1.2:80"), Flags: DirFlagIPv6 | DirFlagNoIPv4}
	if got, err := DecodePublish(p.Encode()); err != nil || got != p {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	for _, flags := range []uint16{DirFlagNoIPv4, 4} {
		b := Publish{Overlay: p.Overlay, Flags: flags}.Encode()
		if _, err := DecodePublish(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("flags %#x: %v, want ErrMalformed", flags, err)
		}
	}
}

func TestPreambleIPv6(t *testing.T) {
	p := Preamble{Client: netip.MustParseAddrPort("198.19.2.2:40000"), Server: netip.MustParseAddrPort("198.19.1.2:80"), IPv6: true}
	b := p.Encode()
	if b[5] != PreambleFlagIPv6 {
		t.Fatalf("flags byte %#x", b[5])
	}
	if got, err := DecodePreamble(b); err != nil || got != p {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	b[5] = 2
	if _, err := DecodePreamble(b); !errors.Is(err, ErrMalformed) {
		t.Errorf("unknown preamble flag: %v", err)
	}
}
