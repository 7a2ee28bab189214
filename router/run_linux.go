package router

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// Run serves until ctx is done (or a part fails), then stops, and returns
// once every goroutine the router started is done.
//
// The router's parts run in three stages, each an errgroup that owns the
// goroutines of its parts, started together and stopped one stage after
// the other, so that nothing a later stage needs is gone while an earlier
// one still runs:
//
//  1. serving: the shim server (its accept loop and one goroutine per
//     connection) and the control API (control socket, metrics). Stopping
//     closes their sockets, lets the requests in progress finish (a
//     LISTEN waits for the peers' acknowledgements: the exchange still
//     runs) and ends every connection.
//  2. exchange: the cluster (push sessions, their ack readers, the
//     connections peers push on; on a cluster store, following the
//     store and publishing to it).
//  3. upkeep: the census's sweep (a sweep in progress finishes), the
//     overlay's repair and the re-reading of the containers' records.
//
// Then the sockets made ahead for the shims' next POOLs are closed (the
// connections' ends closed them already; this closes any left), secure
// mode stops (it counts the host sockets still open: no request can make
// one any more), and the directory table and the
// containers' pool witnesses are closed: nothing publishes or counts any
// more. Connections the router handed out are the applications' and are
// not touched.
func (r *Router) Run(ctx context.Context) error {
	r.publish()
	r.log.Info("router serving", "socket", r.config.SocketPath(), "host", r.self.Underlay,
		"subnet", r.self.Subnet, "containers", r.containers.len(), "peers", len(r.plan.Hosts)-1)
	r.warnPeerAuthentication()
	stages := []*stage{
		startStage("serving", r.serveShims, r.serveControl),
		startStage("exchange", r.cluster.Run),
		startStage("upkeep", r.sweeper.Run, r.keepOverlay, r.keepRecords),
	}
	waitForStop(ctx, stages)
	var err error
	for _, s := range stages {
		err = errors.Join(err, s.stop())
	}
	if err != nil {
		r.log.Error("router stopped: a part failed", "err", err)
	}
	r.closeAhead()
	r.mode.stop()
	r.closeSockets()
	r.closeContainers()
	return err
}

// stage is parts of the router that start and stop together.
type stage struct {
	name   string
	cancel context.CancelFunc
	group  errgroup.Group
	// failed is done when a part returns an error: the router stops.
	failed     context.Context
	markFailed context.CancelFunc
}

// startStage runs each part in a goroutine of a new stage. A part runs
// until its context is done and returns nil, or an error that stops the
// router. The stage's context is not Run's: it ends when the stage is
// stopped, in order, even when one of its parts failed.
func startStage(name string, parts ...func(context.Context) error) *stage {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stage{name: name, cancel: cancel}
	s.failed, s.markFailed = context.WithCancel(context.Background())
	for _, part := range parts {
		s.group.Go(func() error {
			err := part(ctx)
			if err != nil {
				s.markFailed()
			}
			return err
		})
	}
	return s
}

// stop ends the stage's parts and waits for them.
func (s *stage) stop() error {
	s.cancel()
	err := s.group.Wait()
	s.markFailed()
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return nil
}

// waitForStop waits until ctx is done or a part of a stage fails.
func waitForStop(ctx context.Context, stages []*stage) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	unwatch := make([]func() bool, 0, len(stages))
	for _, s := range stages {
		unwatch = append(unwatch, context.AfterFunc(s.failed, cancel))
	}
	<-ctx.Done()
	for _, stop := range unwatch {
		stop()
	}
}
