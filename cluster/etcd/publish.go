package etcd

import (
	"context"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/cluster"
)

// PublishListeners makes listeners this host's list, published in the
// background (see cluster.Store).
func (s *Store) PublishListeners(listeners []cluster.Listener) uint64 {
	s.mu.Lock()
	if s.published == s.generation {
		s.pendingSince = time.Now()
	}
	s.generation++
	s.desired = slices.Clone(listeners)
	generation := s.generation
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return generation
}

// WaitPublished waits until etcd has generation or a later one.
func (s *Store) WaitPublished(ctx context.Context, generation uint64) error {
	for {
		s.mu.Lock()
		done, closed, changed := s.published >= generation, s.closed, s.publishedChanged
		s.mu.Unlock()
		switch {
		case done:
			return nil
		case closed:
			return cluster.ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Store) markPublished(generation uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if generation > s.published {
		s.published = generation
		close(s.publishedChanged)
		s.publishedChanged = make(chan struct{})
	}
}

// publisher writes the latest list whenever there is a newer one than
// etcd has, retrying until it lands. Lists that follow each other while
// a write is under way are written as one (the latest).
func (s *Store) publisher() {
	wait := retryMin
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		for {
			err := s.publishLatest()
			if err == nil {
				wait = retryMin
				break
			}
			s.health.failed(err)
			if isLeaseNotFound(err) {
				select {
				case s.rejoin <- struct{}{}:
				default:
				}
			}
			s.log.Warn("publishing this host's listeners to etcd failed; retrying", "err", err, "in", wait)
			if !s.sleep(wait) {
				return
			}
			wait = backoff(wait)
		}
	}
}

func (s *Store) publishLatest() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mu.Lock()
	generation, listeners, lease, id := s.generation, s.desired, s.live, s.self.ID
	current := s.published >= generation
	s.mu.Unlock()
	if current {
		return nil
	}
	value, err := encodeListeners(listeners)
	if err != nil {
		s.health.problem("this host's listeners cannot be published: " + err.Error())
		return nil // retrying cannot help; the next list may fit
	}
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	if _, err := s.client.Put(ctx, s.keys.listeners(id), string(value), clientv3.WithLease(lease)); err != nil {
		return err
	}
	s.health.wrote()
	s.markPublished(generation)
	return nil
}
