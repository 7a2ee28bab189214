package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/slimnet/slim/bench"
)

func init() {
	register(&command{
		name:    "bench",
		summary: "measure the overlay against host networking on a lab",
		run:     runBench,
	})
}

var benchDescription = `Measures throughput and CPU cost (iperf3), request/response and connection
rates (netperf TCP_RR, TCP_CRR), nginx under wrk and memcached under
memcaslap, in three scenarios: "host" (host namespace h2 to h1 on the wire),
"overlay" (container h2-c1 to h1-c1 on the overlay) and "slim" (the same
containers, both tools run under 'slim exec' through the hosts' routers; a
sample whose traffic crosses the VXLAN device fails rather than report
overlay figures as Slim's). Two anchor columns show the best a packet-based
network does without a tunnel: "routed" (containers h2-veth to h1-veth,
linked to their hosts by veth, their subnets 198.18.(128+I).0/24 routed
over the wire, as Flannel's host-gw does) and "netkit" (the same over
netkit devices, where the kernel has them; a note says when it has not);
a second table compares slim (and secure) with them. Each test runs for the
duration in each scenario, alternating them, as many times as --runs; the
table shows medians and each scenario's ratio to host (the ratio of the
medians, then the lowest and highest of the ratios within each run: a change
inside that range is noise). Needs root and the tools of make deps.

If the lab is not up, a lab of 2 hosts with 1 container each is brought up
and taken down at the end (also on error or Ctrl-C), unless --keep. A lab
that is already up is used and left up.

Tests (for --only): ` + strings.Join(bench.TestIDs(), ", ") + `.

--fixed-load measures what the Slim paper measured, the cost of the same
work: memcached, nginx and redis under the embedded open-loop generator
slim-loadgen, PostgreSQL under pgbench --rate and a JVM stand-in for Kafka.
Each runs first in a closed loop in every column (its peak), then at a fixed
offered load, the same in every column: --load times the overlay column's
median peak. Rows: latency p50/p99/p99.9 (from when each request was due),
CPU time per operation of the client's and of the server's processes (each
in a cgroup v2 of its own), and the machine's softirq and ksoftirqd time per
operation; then a table of Slim's changes beside the paper's.
Applications (for --only with --fixed-load): ` + strings.Join(bench.FixedLoadIDs(), ", ") + `.

--supervised measures the path of programs the shim cannot preload: a Go
client and server (built static by the bench, so Go and a C compiler with
static glibc are needed) under 'slim exec', which runs them under its seccomp
supervisor, beside the same Go programs without Slim ("host", "overlay"), a
C twin of them dynamically linked under 'slim exec' with the shim
("preloaded"), and that C twin built static under the supervisor
("supervised-c"): stream throughput, RR and CRR, and the supervised path's
setup cost over the preloaded one in µs per connection. With --secure, the C
twin and the Go peer also run under the secure routers ("preloaded-secure",
"supervised-secure"), where the kernel answers getsockname and getpeername.
Tests (for --only with --supervised): ` + strings.Join(bench.PeerTestIDs(), ", ") + `.

--store-scale runs the cluster store's scale benchmark instead (simulated
routers against a real etcd; docs/cluster.md); --store-scale --help lists
its flags.

Exit status is 1 if any test failed; the table still shows the others.`

func runBench(args []string) error {
	if storeScaleMode(args) {
		return runStoreScale(args)
	}
	fs := newFlagSet("bench", "[flags]", benchDescription)
	name := fs.String("name", bench.DefaultLabName, "lab name: used if up, else brought up and taken down")
	duration := fs.Duration("duration", 5*time.Second, "duration of each sample, whole seconds")
	runs := fs.Int("runs", 3, "samples per test and scenario; the median is reported")
	asJSON := fs.Bool("json", false, "print a JSON document instead of a table")
	only := fs.String("only", "", "comma-separated tests to run (default all)")
	keep := fs.Bool("keep", false, "leave up a lab that the bench brought up")
	noSlim := fs.Bool("no-slim", false, "leave out the slim column")
	noRouted := fs.Bool("no-routed", false, "leave out the routed and netkit columns")
	secureColumn := fs.Bool("secure", false, "add a secure column: slim with routers in secure mode (a second set, beside the lab's own)")
	fixedLoad := fs.Bool("fixed-load", false, "measure latency and CPU per operation at a fixed offered load (see above)")
	supervised := fs.Bool("supervised", false, "measure the supervised path (static Go and C peers) against the preloaded one (see above)")
	load := fs.Float64("load", bench.DefaultLoadFraction, "with --fixed-load: the offered load, a fraction of the overlay column's peak")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	opts := bench.Options{
		LabName:    *name,
		Duration:   *duration,
		Runs:       *runs,
		Only:       bench.ParseOnly(*only),
		Keep:       *keep,
		Secure:     *secureColumn,
		Routed:     !*noRouted,
		Supervised: *supervised,
		Progress:   os.Stderr,
	}
	loadSet := false
	fs.Visit(func(f *flag.Flag) { loadSet = loadSet || f.Name == "load" })
	if loadSet && !*fixedLoad {
		return fmt.Errorf("%w: --load needs --fixed-load", errUsage)
	}
	if *fixedLoad {
		opts.FixedLoad, opts.LoadFraction = true, *load
	}
	if !*noSlim {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the slim binary for the slim column (or use --no-slim): %w", err)
		}
		opts.Slim = self
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}

	// Until Run returns, SIGINT and SIGTERM cancel the bench instead of
	// killing slim, so that the lab and the servers are cleaned up.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := bench.Run(ctx, opts)
	stop()
	if report != nil && len(report.Metrics) > 0 {
		write := bench.WriteTable
		if *asJSON {
			write = bench.WriteJSON
		}
		if writeErr := write(os.Stdout, report); writeErr != nil {
			err = errors.Join(err, fmt.Errorf("writing results: %w", writeErr))
		}
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted: %w", err)
	}
	if err != nil {
		return err
	}
	if report.Failed() {
		return fmt.Errorf("%d of %d tests failed", len(report.Failures), countTests(report))
	}
	return nil
}

// countTests is the number of tests behind a report's metrics.
func countTests(r *bench.Report) int {
	seen := map[string]bool{}
	for _, m := range r.Metrics {
		seen[m.Test] = true
	}
	return len(seen)
}
