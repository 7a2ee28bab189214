package storescale

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/cluster/etcd"
)

// sampleTimeout bounds the wait for one listener to reach every router.
const sampleTimeout = 10 * time.Second

// sample is one listener published on one router, and when every other
// router had it.
type sample struct {
	key       string // the publishing host's listeners key
	id        string
	extra     cluster.Listener
	start     time.Time
	arrived   []atomic.Int64 // ns after start, per viewer; 0: not yet
	remaining atomic.Int64
	done      chan struct{}
}

func (s *sample) arrive(viewer int) {
	if s.arrived[viewer].CompareAndSwap(0, int64(max(time.Since(s.start), 1))) && s.remaining.Add(-1) == 0 {
		close(s.done)
	}
}

// propagation measures samples; viewers are every host's watch and every
// full router's state.
type propagation struct {
	sim     *simulation
	current atomic.Pointer[sample]
	events  atomic.Int64 // watch events the hosts' watches received
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

// Result of the propagation phase.
type Propagation struct {
	Every     []time.Duration // to every router (watch or state)
	FullState []time.Duration // to every full router's state
	Committed []time.Duration // until etcd had it (WaitPublished)
	Missed    int             // viewers that did not get a sample in time
	Events    int64           // watch events received by the hosts' watches
}

func (sim *simulation) startViewers(ctx context.Context, fromRev int64) *propagation {
	ctx, cancel := context.WithCancel(ctx)
	p := &propagation{sim: sim, cancel: cancel}
	for i, h := range sim.hosts {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.watch(ctx, i, h.store.Client(), fromRev) }()
	}
	for k, s := range sim.full {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.follow(ctx, len(sim.hosts)+k, s) }()
	}
	return p
}

func (p *propagation) stop() {
	p.cancel()
	p.wg.Wait()
}

// watch is a simulated router's watch of the prefix: it notes when the
// current sample's key changed.
func (p *propagation) watch(ctx context.Context, viewer int, client *clientv3.Client, fromRev int64) {
	ch := client.Watch(ctx, p.sim.prefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev+1))
	for resp := range ch {
		p.events.Add(int64(len(resp.Events)))
		s := p.current.Load()
		if s == nil {
			continue
		}
		for _, ev := range resp.Events {
			if string(ev.Kv.Key) == s.key && ev.Kv.ModRevision > 0 {
				s.arrive(viewer)
			}
		}
	}
}

// follow is a full router: the sample has arrived when its state holds
// the new listener.
func (p *propagation) follow(ctx context.Context, viewer int, store *etcd.Store) {
	for {
		state, changed := store.State()
		if s := p.current.Load(); s != nil {
			if ls := state.Listeners(s.id); len(ls) > 0 && ls[len(ls)-1] == s.extra {
				s.arrive(viewer)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(time.Millisecond):
		}
	}
}

// run publishes the samples one after the other, each on the next host.
func (p *propagation) run(ctx context.Context) (Propagation, error) {
	var r Propagation
	viewers := len(p.sim.hosts) + len(p.sim.full)
	eventsBefore := p.events.Load()
	for n := range p.sim.opts.Samples {
		h := p.sim.hosts[(n*7919)%len(p.sim.hosts)] // spread over the hosts
		ls := p.sim.listeners(h.member, n)
		s := &sample{
			key: etcd.DefaultPrefix + "hosts/" + h.member.ID + "/listeners", id: h.member.ID,
			extra: ls[len(ls)-1], arrived: make([]atomic.Int64, viewers), done: make(chan struct{}),
		}
		s.remaining.Store(int64(viewers))
		p.current.Store(s)
		s.start = time.Now()
		generation := h.store.PublishListeners(ls)
		wait, cancel := context.WithTimeout(ctx, sampleTimeout)
		if err := h.store.WaitPublished(wait, generation); err != nil {
			cancel()
			return r, fmt.Errorf("sample %d: publishing: %w", n, err)
		}
		r.Committed = append(r.Committed, time.Since(s.start))
		select {
		case <-s.done:
		case <-wait.Done():
		}
		cancel()
		p.current.Store(nil)
		every, full, missed := s.result(len(p.sim.hosts))
		r.Every, r.FullState, r.Missed = append(r.Every, every), append(r.FullState, full), r.Missed+missed
		if err := ctx.Err(); err != nil {
			return r, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.Events = p.events.Load() - eventsBefore
	return r, nil
}

// result is the time until the last viewer had the sample, the same for
// the full routers alone, and how many viewers never had it.
func (s *sample) result(watchers int) (every, full time.Duration, missed int) {
	for i := range s.arrived {
		ns := s.arrived[i].Load()
		if ns == 0 {
			missed++
			ns = int64(sampleTimeout)
		}
		every = max(every, time.Duration(ns))
		if i >= watchers {
			full = max(full, time.Duration(ns))
		}
	}
	return every, full, missed
}
