package storescale

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/slimnet/slim/internal/etcdrun"
)

// Report is what a run measured.
type Report struct {
	Options      Options
	EtcdVersion  string
	Fill         time.Duration   // joins and first publications of every host
	FullJoins    []time.Duration // joins of routers with the whole directory
	Propagation  Propagation
	PerListener  counters // etcd's counters over the samples, per sample
	Cluster      counters // etcd's gauges after the run
	Probe        ProbeResult
	Lookups      []LookupRow
	KeepAlivesPS float64 // lease renewals per second while sampling
}

// Run brings up etcd in a scratch namespace, simulates the cluster and
// measures it. Everything it started is stopped before it returns.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "slim-store-scale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	progress(opts, "starting etcd (%d member(s)) in a scratch namespace", opts.EtcdMembers)
	scratch, err := etcdrun.NewScratch(dir, opts.EtcdMembers)
	if err != nil {
		return nil, err
	}
	defer scratch.Close()
	sim := newSimulation(scratch, opts)
	defer sim.close()
	r := &Report{Options: opts, EtcdVersion: etcdVersion()}
	return r, sim.measure(ctx, r, dir)
}

func (sim *simulation) measure(ctx context.Context, r *Report, dir string) error {
	opts := sim.opts
	progress(opts, "filling: %d routers join and publish %d listeners each", opts.Hosts, opts.Listeners)
	start := time.Now()
	if err := sim.fill(ctx); err != nil {
		return err
	}
	r.Fill = time.Since(start)
	progress(opts, "filled in %v; %d full routers join (one read of the whole directory each)", r.Fill.Round(time.Millisecond), opts.FullRouters)
	var err error
	if r.FullJoins, err = sim.joinFull(ctx); err != nil {
		return err
	}
	if err := sim.sample(ctx, r); err != nil {
		return err
	}
	progress(opts, "memory probe: one router with the whole directory")
	if r.Probe, err = sim.runProbe(ctx, dir); err != nil {
		return err
	}
	progress(opts, "directory table lookups")
	state, _ := sim.full[0].State()
	r.Lookups, err = lookupTable(toEntries(state.Directory("")), dir, sim.network.Overlay)
	return err
}

// sample measures the propagation of samples and etcd's counters over
// them.
func (sim *simulation) sample(ctx context.Context, r *Report) error {
	state, _ := sim.full[len(sim.full)-1].State()
	viewers := sim.startViewers(ctx, state.Revision())
	defer viewers.stop()
	time.Sleep(time.Second) // let every watch be set up
	before, err := scrape(ctx, sim.scratch)
	if err != nil {
		return err
	}
	progress(sim.opts, "sampling: %d listeners published one at a time, each watched by %d routers", sim.opts.Samples, len(sim.hosts)+len(sim.full))
	start := time.Now()
	if r.Propagation, err = viewers.run(ctx); err != nil {
		return err
	}
	elapsed := time.Since(start)
	after, err := scrape(ctx, sim.scratch)
	if err != nil {
		return err
	}
	delta := after.minus(before)
	n := float64(sim.opts.Samples)
	r.PerListener = counters{Puts: delta.Puts / n, Txns: delta.Txns / n, Events: delta.Events / n}
	r.KeepAlivesPS = delta.Renewals / elapsed.Seconds()
	r.Cluster = after
	return nil
}

func etcdVersion() string {
	out, err := exec.Command(etcdrun.Binary, "--version").Output()
	if err != nil {
		return "unknown"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(strings.TrimPrefix(first, "etcd Version:"))
}

func progress(opts Options, format string, args ...any) {
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "store-scale: "+format+"\n", args...)
	}
}
