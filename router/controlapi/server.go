package controlapi

import (
	"context"
	"log/slog"
	"net"
	"sync"

	"github.com/slimnet/slim/control"
)

// Server is a router's control API and metrics endpoint.
type Server struct {
	// Control is the control socket (Listen), API what it serves.
	Control net.Listener
	API     *control.Server
	// Metrics, if not nil, serves the API's Source as Prometheus text
	// metrics at /metrics.
	Metrics net.Listener
	Log     *slog.Logger
}

// Run serves until ctx is done, then closes the listeners and every
// session, and returns once every goroutine it started is done. A control
// API that stops on its own is logged, and the router goes on without it.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.API.Serve(ctx, s.Control); err != nil {
			s.Log.Error("control API stopped", "err", err)
		}
	}()
	if s.Metrics != nil {
		wg.Add(1)
		go func() { defer wg.Done(); serveMetrics(ctx, s.Metrics, s.API.Source, s.Log) }()
	}
	wg.Wait()
	return nil
}
