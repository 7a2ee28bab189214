package etcdrun

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Dialer opens a connection to addr (host:port); nil dials from the
// calling process's network namespace.
type Dialer func(ctx context.Context, addr string) (net.Conn, error)

// Client connects to endpoints with TLS config tlsConfig, through dial if
// not nil. Connecting does not wait for a member to answer.
func Client(endpoints []string, tlsConfig *tls.Config, dial Dialer) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsConfig,
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	}
	if dial != nil {
		cfg.DialOptions = []grpc.DialOption{grpc.WithContextDialer(dial)}
	}
	return clientv3.New(cfg)
}

// WaitReady waits until every member answers a status request and the
// cluster has a leader, or ctx ends.
func WaitReady(ctx context.Context, client *clientv3.Client, endpoints []string) error {
	var last error
	for {
		last = ready(ctx, client, endpoints)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd not ready: %w", errors.Join(ctx.Err(), last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ready(ctx context.Context, client *clientv3.Client, endpoints []string) error {
	for _, ep := range endpoints {
		attempt, cancel := context.WithTimeout(ctx, time.Second)
		status, err := client.Status(attempt, ep)
		cancel()
		if err != nil {
			return fmt.Errorf("member %s: %w", ep, err)
		}
		if status.Leader == 0 {
			return fmt.Errorf("member %s: no leader yet", ep)
		}
	}
	return nil
}
