package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/slimnet/slim/bench/storescale"
	"github.com/slimnet/slim/lab"
)

const storeScaleDescription = `The cluster store's scale benchmark: N simulated routers in this process,
each a real etcd store with its own connection and a watch of the cluster,
against a real etcd (Debian's etcd-server) that it starts in a scratch
network namespace on 198.18.250.x and stops at the end. Every router joins
and publishes its listeners; then listeners are published one at a time on
one router and timed until every router's watch (and the full routers'
state) has them. Reports propagation p50/p99, etcd writes and watch events
per new listener (etcd's own counters), the memory of one router process
with the whole directory, and the directory table's lookup time by size.
Needs root and etcd (make deps). Heavy: the defaults (1000 routers x 100
listeners) take minutes and several GiB of memory.`

// storeScaleMode says whether the bench's arguments ask for the store
// benchmark (or its memory probe).
func storeScaleMode(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		return a == "--store-scale" || a == "-store-scale" || a == "--store-scale-probe" || a == "-store-scale-probe"
	})
}

func runStoreScale(args []string) error {
	fs := newFlagSet("bench --store-scale", "[flags]", storeScaleDescription)
	fs.Bool("store-scale", true, "this benchmark")
	probe := fs.String("store-scale-probe", "", "internal: run the memory probe described by `FILE`")
	d := storescale.Defaults()
	hosts := fs.Int("hosts", d.Hosts, "simulated routers")
	listeners := fs.Int("listeners", d.Listeners, "listeners per router")
	samples := fs.Int("samples", d.Samples, "listeners published one at a time and timed")
	full := fs.Int("full-routers", d.FullRouters, "routers (besides --hosts) that keep the whole state, as a router does")
	members := fs.Int("etcd-members", d.EtcdMembers, "etcd members: 1 or 3")
	ttl := fs.Duration("ttl", d.TTL, "the routers' member lease")
	compare := fs.Bool("compare-static", false, "instead: real routers on two labs, the static full mesh and etcd, side by side")
	labHosts := fs.Int("lab-hosts", 16, "hosts of each lab of --compare-static")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *probe != "" {
		return storescale.Probe(*probe, os.Stdout)
	}
	if *compare {
		return compareStatic(*labHosts, *samples)
	}
	opts := storescale.Options{
		Hosts: *hosts, Listeners: *listeners, Samples: *samples, FullRouters: *full,
		EtcdMembers: *members, TTL: *ttl, Progress: os.Stderr,
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if self, err := os.Executable(); err == nil {
		opts.Probe = self
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := storescale.Run(ctx, opts)
	if err != nil {
		return err
	}
	report.WriteText(os.Stdout)
	return nil
}

// compareStatic is --compare-static.
func compareStatic(hosts, samples int) error {
	if hosts < 2 || hosts > lab.MaxHosts {
		return fmt.Errorf("%w: --lab-hosts %d: want 2 to %d", errUsage, hosts, lab.MaxHosts)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "store-scale: "+format+"\n", args...) }
	rows, err := storescale.CompareLab(ctx, self, hosts, min(samples, 50), progress)
	if len(rows) > 0 {
		storescale.WriteLabComparison(os.Stdout, hosts, rows)
	}
	return err
}
