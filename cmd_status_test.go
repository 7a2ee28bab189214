package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/slimnet/slim/control"
)

// TestStatusSaysInsecurePeers: slim status says loudly when a router's
// peer channel is not authenticated, and says nothing of it otherwise.
func TestStatusSaysInsecurePeers(t *testing.T) {
	for _, insecure := range []bool{true, false} {
		var out bytes.Buffer
		snap := control.Snapshot{Router: control.RouterHealth{InsecurePeers: insecure}}
		if err := writeStatus(&out, snap); err != nil {
			t.Fatal(err)
		}
		said := strings.Contains(out.String(), "INSECURE the directory exchange with peer routers is not authenticated")
		if said != insecure {
			t.Errorf("insecure_peers %v: status says %q", insecure, out.String())
		}
	}
}
