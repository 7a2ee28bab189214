package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/slimnet/slim/secure"
)

// TestIntegrationSecureAcceptMovesVerifiedClient: the verified client of an
// accepted host connection moves from the slim_clients map into the
// accepted socket's own state (so that the map's LRU refills instead of
// evicting at every new client), and the server still learns the client's
// overlay address: its shim checks the preamble against getpeername, which
// the program now answers from the socket's state.
func TestIntegrationSecureAcceptMovesVerifiedClient(t *testing.T) {
	l := newSecureLab(t, "ykc")
	const port = 7411
	server := startHoldServer(l, "h2-c1", "h1", port)
	client := startHoldClient(l, "h1-c1", "h2-c1", port)
	client.waitFor("CONNECTED", 10*time.Second)

	bpffs, err := secure.BPFFSMount()
	if err != nil {
		t.Fatal(err)
	}
	pin := filepath.Join(secure.PinDir(bpffs, secure.RouterID(l.RouterDir("h2"))), "slim_clients")
	clients, err := ebpf.LoadPinnedMap(pin, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer clients.Close()
	var key [12]byte
	var value uint32
	left := 0
	for it := clients.Iterate(); it.Next(&key, &value); {
		left++
	}
	if left != 0 {
		t.Errorf("slim_clients holds %d entries after the connection was accepted, want 0 (moved into the socket)", left)
	}

	client.stop()
	want := "SERVER CLOSED " + l.containerAddr("h1-c1") + ":"
	server.waitFor(want, 10*time.Second)
	if out := server.output(); !strings.Contains(out, want) {
		t.Errorf("the server saw another peer than %s:\n%s", l.containerAddr("h1-c1"), out)
	}
}
