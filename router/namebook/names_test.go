package namebook

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// TestNamesLayout: an entry's names are laid out as docs/protocol.md §6
// says (the C shim reads them by offset) and decode back.
func TestNamesLayout(t *testing.T) {
	n := Names{Local: netip.MustParseAddrPort("198.19.1.2:8080"), Peer: netip.MustParseAddrPort("198.19.2.3:40000"), Form: FormMapped}
	b := n.Encode()
	want := []byte{198, 19, 1, 2, 0x1f, 0x90, 0x9c, 0x40, 198, 19, 2, 3, 1, 0, 0, 0}
	if !bytes.Equal(b, want) {
		t.Errorf("names encode as % x, want % x", b, want)
	}
	got, err := DecodeNames(b)
	if err != nil || got != n {
		t.Errorf("decoded %+v, %v; want %+v", got, err, n)
	}
}

// TestNamesRefusals: names of another size, an unknown form or nonzero
// reserved bytes are malformed.
func TestNamesRefusals(t *testing.T) {
	good := Names{Local: netip.MustParseAddrPort("198.19.1.2:80"), Peer: netip.MustParseAddrPort("198.19.2.2:1234")}.Encode()
	for name, b := range map[string][]byte{
		"empty":    nil,
		"short":    good[:12],
		"long":     append(append([]byte{}, good...), 0),
		"form 3":   append(append([]byte{}, good[:12]...), 3, 0, 0, 0),
		"reserved": append(append([]byte{}, good[:12]...), 0, 0, 1, 0),
	} {
		if _, err := DecodeNames(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want malformed names", name, err)
		}
	}
}
