package etcd

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// IsUnreachable says whether err means that etcd did not answer (a
// timeout, no connection, no leader) rather than that it refused: a
// router that gets it at start serves from its saved state and joins in
// the background.
func IsUnreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var s interface{ GRPCStatus() *status.Status }
	if errors.As(err, &s) {
		switch s.GRPCStatus().Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return true
		}
	}
	return false
}
