package etcd

import (
	"context"
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slimnet/slim/cluster"
)

// TestIsUnreachable: a router starts without etcd when etcd does not
// answer, never when it refuses.
func TestIsUnreachable(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("joining: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("joining: %w", status.Error(codes.Unavailable, "connection refused")), true},
		{rpctypes.ErrGRPCNoLeader, true},
		{rpctypes.ErrGRPCPermissionDenied, false},
		{fmt.Errorf("joining: %w", cluster.ErrSubnetTaken), false},
		{context.Canceled, false},
	} {
		if got := IsUnreachable(tt.err); got != tt.want {
			t.Errorf("IsUnreachable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
