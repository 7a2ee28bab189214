// Package acceptloop accepts connections for as long as a listener is
// open. accept(2) fails for reasons any local user can provoke: EMFILE
// when the process is out of descriptors (a user opened thousands of idle
// connections), ENFILE when the host is, ENOBUFS or ENOMEM under memory
// pressure, ECONNABORTED when a client gave up in the backlog. None of
// them is a reason to stop serving: the loop pauses and tries again, and
// ends only when the listener is closed.
package acceptloop

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// The pause after a failed accept: it starts at MinPause and doubles with
// each failure in a row, up to MaxPause.
const (
	MinPause = 5 * time.Millisecond
	MaxPause = time.Second
)

// Run calls accept until it fails with net.ErrClosed, handing each
// connection to serve (which should return quickly: start a goroutine).
// Any other failure pauses the loop and is retried. The first failure of
// a run of failures is logged as a warning, with what is accepted (what),
// and the first success after it; nothing in between, so that a flood
// cannot flood the log too.
func Run[C any](what string, log *slog.Logger, accept func() (C, error), serve func(C)) {
	var failures int
	var since time.Time
	pause := MinPause
	for {
		conn, err := accept()
		if err == nil {
			if failures > 0 {
				log.Info("accepting again", "what", what, "failures", failures, "after", time.Since(since).Round(time.Millisecond))
				failures, pause = 0, MinPause
			}
			serve(conn)
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if failures == 0 {
			since = time.Now()
			log.Warn("accept failed; pausing and retrying until it works again", "what", what, "err", err)
		}
		failures++
		time.Sleep(pause)
		pause = min(2*pause, MaxPause)
	}
}
