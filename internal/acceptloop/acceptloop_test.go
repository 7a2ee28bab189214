package acceptloop

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunSurvivesAcceptErrors: the errors a local user can make accept
// return (out of descriptors, a client that gave up) pause the loop, which
// then serves the next connection; only a closed listener ends it. The
// log has one warning for the run of failures, not one per failure.
func TestRunSurvivesAcceptErrors(t *testing.T) {
	failures := []error{
		&net.OpError{Op: "accept", Net: "unixpacket", Err: os.NewSyscallError("accept4", syscall.EMFILE)},
		&net.OpError{Op: "accept", Net: "unixpacket", Err: os.NewSyscallError("accept4", syscall.ENFILE)},
		&net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)},
		&net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ENOBUFS)},
		errors.New("something nobody foresaw"),
	}
	var script []error
	for range 2 {
		script = append(script, failures...)
	}
	script = append(script, nil, net.ErrClosed)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	served := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run("test connection", log, func() (int, error) {
			err := script[0]
			script = script[1:]
			return 7, err
		}, func(int) { served++ })
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Run did not end after the listener was closed")
	}
	if served != 1 {
		t.Errorf("served %d connections after 10 failed accepts, want 1", served)
	}
	if n := strings.Count(logs.String(), "accept failed"); n != 1 {
		t.Errorf("%d warnings for one run of failures, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "accepting again") || !strings.Contains(logs.String(), "failures=10") {
		t.Errorf("no note that accepting works again after 10 failures:\n%s", logs.String())
	}
}
