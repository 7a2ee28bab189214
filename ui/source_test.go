package ui

import (
	"context"

	"github.com/slimnet/slim/control"
)

type result struct {
	snap control.Snapshot
	err  error
}

// scriptedSource returns its results in order.
type scriptedSource struct{ results []result }

func (s *scriptedSource) Next(context.Context) (control.Snapshot, error) {
	r := s.results[0]
	s.results = s.results[1:]
	return r.snap, r.err
}
