package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/slimnet/slim/router/directory"
)

// TestIntegrationDirectoryGrows: a server with more listeners than a
// directory table of the default size holds (half its slots) is
// accelerated on its last port from another host, whose router's table
// grew too. Once, a table refused the listener past half its slots: past
// 4096 listeners in a cluster (8192 slots then), every router's table
// stopped changing and new listeners' clients used the overlay.
func TestIntegrationDirectoryGrows(t *testing.T) {
	l := newLab(t, "dgr")
	const first = 20000
	n := directory.DefaultCapacity/2 + 100
	addr := l.containerAddr("h1-c1")
	server := l.start("h1-c1", true, "python3", testdataPath("manylisten.py"), fmt.Sprint(first), fmt.Sprint(n))
	server.waitFor("LISTENING", 180*time.Second)
	last := first + n - 1
	l.waitForDirectory("h2", addr, last, 60*time.Second)
	probe := l.start("h2-c1", true, binPath("probe"), addr, fmt.Sprint(last), "3", "20")
	if paths := probeOutcome(t, probe, 30*time.Second); paths["host"] != 3 {
		t.Errorf("connections to the %dth listener: %v, want 3 accelerated", n, paths)
	}
}
