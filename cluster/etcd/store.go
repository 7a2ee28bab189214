package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/slimnet/slim/cluster"
)

// Timings of the store's calls to etcd.
const (
	// opTimeout bounds one call; a call that fails is retried later.
	opTimeout = 5 * time.Second
	// retryMin and retryMax bound the wait between retries.
	retryMin = 100 * time.Millisecond
	retryMax = 2 * time.Second
)

// Store is a cluster.Store on etcd.
type Store struct {
	config Config
	keys   keys
	client *clientv3.Client
	log    *slog.Logger
	view   *cluster.View
	health health

	ctx    context.Context // ends at Close or Leave
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// writeMu orders writes of the listeners record (the publisher and
	// a rejoin), so that an older list never lands after a newer one.
	writeMu sync.Mutex

	mu                    sync.Mutex
	self                  cluster.Self
	member                cluster.Member
	joined                bool
	closed                bool
	live                  clientv3.LeaseID // the member lease
	claim                 clientv3.LeaseID // the subnet claim's lease
	desired               []cluster.Listener
	generation, published uint64
	pendingSince          time.Time // when published fell behind generation
	publishedChanged      chan struct{}
	wake                  chan struct{} // the publisher has work
	rejoin                chan struct{} // the member lease is gone
}

var _ cluster.Store = (*Store)(nil)

// New connects to etcd (without waiting for it to answer).
func New(config Config) (*Store, error) {
	if err := config.Check(); err != nil {
		return nil, err
	}
	tlsConfig, err := config.tlsConfig()
	if err != nil {
		return nil, err
	}
	cfg := clientv3.Config{
		Endpoints:            config.Endpoints,
		TLS:                  tlsConfig,
		DialTimeout:          opTimeout,
		DialKeepAliveTime:    config.ttl() / 3,
		DialKeepAliveTimeout: config.ttl() / 3,
		Logger:               zap.NewNop(),
	}
	if config.Dial != nil {
		cfg.DialOptions = []grpc.DialOption{grpc.WithContextDialer(config.Dial)}
	}
	client, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{
		config:           config,
		keys:             keys{prefix: config.prefix()},
		client:           client,
		log:              config.logger(),
		view:             cluster.NewView(cluster.NewState()),
		ctx:              ctx,
		cancel:           cancel,
		publishedChanged: make(chan struct{}),
		wake:             make(chan struct{}, 1),
		rejoin:           make(chan struct{}, 1),
	}, nil
}

// Client is the store's etcd client, for tools that watch or read more
// than the store does (the scale benchmark).
func (s *Store) Client() *clientv3.Client { return s.client }

// State is the latest state seen.
func (s *Store) State() (*cluster.State, <-chan struct{}) { return s.view.Current() }

// Health says whether etcd answers, and what went wrong last.
func (s *Store) Health() cluster.Health {
	state, _ := s.view.Current()
	s.mu.Lock()
	pending, since, joined := s.generation-s.published, s.pendingSince, s.joined
	s.mu.Unlock()
	if pending == 0 {
		since = time.Time{}
	}
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return cluster.Health{
		Backend:      "etcd",
		Endpoints:    s.config.Endpoints,
		Joined:       joined,
		Connected:    s.health.connected,
		Since:        s.health.since,
		LastError:    s.health.lastError,
		ErrorAt:      s.health.errorAt,
		Revision:     state.Revision(),
		LastWrite:    s.health.lastWrite,
		LastWatch:    s.health.lastWatch,
		LastRenewal:  s.health.lastRenewal,
		Unpublished:  pending > 0,
		Pending:      pending,
		PendingSince: since,
		Members:      len(state.Members()),
		Listeners:    state.ListenerCount(),
		Resyncs:      s.health.resyncs,
	}
}

// Close stops following the cluster and renewing the leases, without
// giving anything up: the records expire after the member lease and the
// subnet after the grace period, unless the host joins again.
func (s *Store) Close() error {
	if !s.stop() {
		return nil
	}
	return s.client.Close()
}

// stop ends the background work; false if it had ended already.
func (s *Store) stop() bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return true
}

// Leave deletes this host's records and frees its subnet (by revoking
// both leases), then closes the store.
func (s *Store) Leave(ctx context.Context) error {
	s.mu.Lock()
	joined, live, claim := s.joined, s.live, s.claim
	s.mu.Unlock()
	if !s.stop() {
		return cluster.ErrClosed
	}
	defer s.client.Close()
	if !joined {
		return nil
	}
	var errs []error
	for _, lease := range []clientv3.LeaseID{live, claim} {
		if _, err := s.client.Revoke(ctx, lease); err != nil && !isLeaseNotFound(err) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("leaving the cluster: %w", err)
	}
	return nil
}

// goLoop runs fn in the background until the store stops.
func (s *Store) goLoop(fn func()) {
	s.wg.Add(1)
	go func() { defer s.wg.Done(); fn() }()
}

// sleep waits d or until the store stops; false if it stopped.
func (s *Store) sleep(d time.Duration) bool {
	select {
	case <-s.ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func backoff(d time.Duration) time.Duration { return min(2*d, retryMax) }
