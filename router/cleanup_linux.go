package router

import (
	"errors"
	"fmt"
	"net"

	"github.com/slimnet/slim/secure"
)

// CleanupReport says what Cleanup removed.
type CleanupReport struct {
	// Found is false when the router left nothing of secure mode.
	Found bool
	// OpenSockets counts the host sockets the router made that were still
	// open, guarded until Cleanup; Counted is false when that could not
	// be told.
	OpenSockets int
	Counted     bool
	// Enrolled names the containers with processes in their cgroups,
	// which were under the overlay policy check until Cleanup.
	Enrolled []string
}

// Cleanup takes out of the kernel what the secure router of config.Dir
// left there when it stopped: a router that stops while host sockets it
// made are open (or that is killed) leaves its programs pinned to guard
// them, for the next start to take over. Sockets still open are no longer
// guarded afterwards. Cleanup refuses while a router serves config.Dir.
func Cleanup(config Config) (CleanupReport, error) {
	if conn, err := net.Dial("unixpacket", config.SocketPath()); err == nil {
		conn.Close()
		return CleanupReport{}, fmt.Errorf("a router is serving %s: stop it first", config.SocketPath())
	}
	id := secure.RouterID(config.Dir)
	var report CleanupReport
	left, err := secure.LeftBehind(id)
	if err != nil {
		return report, err
	}
	if left == nil {
		return report, nil
	}
	report.Found = true
	report.OpenSockets, report.Counted, report.Enrolled = left.OpenSockets, left.Counted, left.Enrolled
	if err := secure.RemoveLeftovers(id); err != nil {
		return report, errors.Join(errors.New("secure mode: cleanup incomplete"), err)
	}
	return report, nil
}
