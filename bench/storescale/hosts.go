package storescale

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/cluster/etcd"
	"github.com/slimnet/slim/internal/etcdrun"
)

// joinParallelism bounds the joins and first publications under way at
// once while the cluster fills.
const joinParallelism = 32

// simulation is the cluster under test.
type simulation struct {
	opts    Options
	scratch *etcdrun.Scratch
	prefix  string
	network cluster.Network
	hosts   []*simHost
	full    []*etcd.Store
}

// simHost is one simulated router: a store that publishes (and whose
// connection also carries a watch of the prefix).
type simHost struct {
	index  int
	store  *etcd.Store
	member cluster.Member
}

func newSimulation(scratch *etcdrun.Scratch, opts Options) *simulation {
	return &simulation{
		opts:    opts,
		scratch: scratch,
		prefix:  etcd.DefaultPrefix,
		network: cluster.Network{Overlay: netip.MustParsePrefix("198.19.0.0/16"), HostBits: opts.hostBits()},
	}
}

// config is the store configuration of a router of the simulation.
func (sim *simulation) config(user string, publishOnly bool) (etcd.Config, error) {
	files, err := sim.scratch.ClientFiles(user)
	if err != nil {
		return etcd.Config{}, err
	}
	return etcd.Config{
		Endpoints: sim.scratch.Cluster.Endpoints(),
		CAFile:    sim.scratch.CAFile, CertFile: files.Cert, KeyFile: files.Key,
		Prefix: sim.prefix, TTLSeconds: int(sim.opts.TTL.Seconds()),
		Dial: sim.scratch.Dial, PublishOnly: publishOnly,
	}, nil
}

// self is the description of simulated router i.
func (sim *simulation) self(i int, id string) cluster.Self {
	return cluster.Self{
		ID:       id,
		Underlay: netip.AddrFrom4([4]byte{198, 18, byte(1 + i/250), byte(1 + i%250)}),
		PeerPort: 7946,
		Network:  sim.network,
	}
}

// open makes and joins a store.
func (sim *simulation) open(ctx context.Context, i int, id string, publishOnly bool) (*etcd.Store, cluster.Member, error) {
	cfg, err := sim.config(id, publishOnly)
	if err != nil {
		return nil, cluster.Member{}, err
	}
	store, err := etcd.New(cfg)
	if err != nil {
		return nil, cluster.Member{}, err
	}
	m, err := store.Join(ctx, sim.self(i, id))
	if err != nil {
		store.Close()
		return nil, cluster.Member{}, fmt.Errorf("router %s: %w", id, err)
	}
	return store, m, nil
}

// fill joins every simulated host and publishes its listeners; it
// returns when etcd has them all.
func (sim *simulation) fill(ctx context.Context) error {
	sim.hosts = make([]*simHost, sim.opts.Hosts)
	errs := make(chan error, sim.opts.Hosts)
	sem := make(chan struct{}, joinParallelism)
	var wg sync.WaitGroup
	for i := range sim.opts.Hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- sim.fillHost(ctx, i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (sim *simulation) fillHost(ctx context.Context, i int) error {
	store, m, err := sim.open(ctx, i, fmt.Sprintf("sim%04d", i), true)
	if err != nil {
		return err
	}
	sim.hosts[i] = &simHost{index: i, store: store, member: m}
	wait, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return store.WaitPublished(wait, store.PublishListeners(sim.listeners(m, -1)))
}

// listeners is a host's list: Listeners of them over up to 50 container
// addresses, and the sample's extra listener if sample >= 0.
func (sim *simulation) listeners(m cluster.Member, sample int) []cluster.Listener {
	usable := 1<<(32-m.Subnet.Bits()) - 3
	containers := min(50, usable)
	first := m.Subnet.Addr().Next().Next()
	var ls []cluster.Listener
	for j := range sim.opts.Listeners {
		addr := first
		for range j % containers {
			addr = addr.Next()
		}
		port := uint16(8000 + j/containers)
		ls = append(ls, cluster.Listener{
			Overlay: netip.AddrPortFrom(addr, port),
			Host:    netip.AddrPortFrom(m.Underlay, uint16(20000+j)),
		})
	}
	if sample >= 0 {
		ls = append(ls, cluster.Listener{
			Overlay: netip.AddrPortFrom(first, uint16(40000+sample%20000)),
			Host:    netip.AddrPortFrom(m.Underlay, uint16(45000+sample%20000)),
		})
	}
	return ls
}

// joinFull joins the full routers, which read the whole directory at
// join; it returns how long each join took.
func (sim *simulation) joinFull(ctx context.Context) ([]time.Duration, error) {
	var took []time.Duration
	for k := range sim.opts.FullRouters {
		start := time.Now()
		store, _, err := sim.open(ctx, sim.opts.Hosts+k, fmt.Sprintf("full%03d", k), false)
		if err != nil {
			return took, err
		}
		took = append(took, time.Since(start))
		sim.full = append(sim.full, store)
	}
	return took, nil
}

func (sim *simulation) close() {
	var wg sync.WaitGroup
	for _, s := range sim.full {
		wg.Add(1)
		go func() { defer wg.Done(); s.Close() }()
	}
	for _, h := range sim.hosts {
		if h != nil {
			wg.Add(1)
			go func() { defer wg.Done(); h.store.Close() }()
		}
	}
	wg.Wait()
}
