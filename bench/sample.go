package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// sample is what a test needs to take one sample in one scenario.
type sample struct {
	Scenario
	duration time.Duration
	// dir is a temporary directory for the sample's files, the working
	// directory of its processes; it is removed afterwards.
	dir string
	// tools maps the names of the test's executables to their paths.
	tools map[string]string
	// fixed is what the fixed-load mode's samples share (nil otherwise).
	fixed *fixedEnv
}

// Bounds on waiting for the processes of a sample.
const (
	// serverReadyTimeout bounds the wait for a server to accept.
	serverReadyTimeout = 5 * time.Second
	// clientGrace is how long a client may run beyond the duration
	// (connection set-up, reports) before it is killed.
	clientGrace = 20 * time.Second
	// stopGrace is how long a server has to exit after SIGTERM before
	// it gets SIGKILL.
	stopGrace = 3 * time.Second
)

func (s *sample) addr() string { return s.ServerAddr.String() }

// withServer starts a server, waits until it is ready, runs client and
// stops the server, whatever happened.
func (s *sample) withServer(ctx context.Context, argv []string, ready readiness, client func() error) error {
	return s.withServerIn(ctx, argv, nil, ready, func(*server) error { return client() })
}

// withServerIn is withServer with the server started in cg (unless nil)
// and handed to client.
func (s *sample) withServerIn(ctx context.Context, argv []string, cg *cgroup, ready readiness, client func(*server) error) (err error) {
	server, err := s.startServer(argv, cg)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := server.stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()
	if err := ready(ctx, s, server); err != nil {
		return err
	}
	if err := client(server); err != nil {
		if server.exited() {
			return fmt.Errorf("%w (%s)", err, server.exitReport())
		}
		return err
	}
	return nil
}
