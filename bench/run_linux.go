package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/slimnet/slim/lab"
)

// Shape of the lab Run brings up when none is up.
const (
	labHosts             = 2
	labContainersPerHost = 1
)

// Run runs the bench. It uses the lab named in the options if it is up, and
// otherwise brings one up and takes it down before returning, whatever
// happens (unless Keep is set). Cancelling ctx stops the bench at once.
//
// A test that fails is recorded in the report's Failures and the others
// still run; the error is for what stopped the whole bench (the lab, a
// cancellation), and then the report holds what was measured so far.
func Run(ctx context.Context, opts Options) (report *Report, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the bench needs root: it builds a lab and runs its tools in the lab's network namespaces")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	progress := opts.progress()
	l, broughtUp, err := useLab(opts, progress)
	if err != nil {
		return nil, err
	}
	if broughtUp {
		defer func() { err = errors.Join(err, releaseLab(opts.LabName, opts.Keep, progress)) }()
	}
	if opts.Secure {
		if err := startSecureRouters(l, opts.Slim, progress); err != nil {
			return nil, err
		}
	}
	columns, notes, err := scenarios(l, opts)
	if err != nil {
		return nil, err
	}
	report = &Report{Lab: opts.LabName, Duration: opts.Duration, Runs: opts.Runs, Scenarios: columns, Notes: notes}
	b := &bencher{opts: opts, report: report, progress: progress}
	if opts.FixedLoad {
		return report, b.runFixedLoad(ctx)
	}
	if opts.Supervised {
		return report, b.runSupervised(ctx, l)
	}
	selected, err := selectTests(opts.Only)
	if err != nil {
		return nil, err
	}
	b.total = len(selected) * opts.Runs * len(columns)
	defer func() { err = errors.Join(err, b.closeShared()) }()
	for _, t := range selected {
		if err := b.runTest(ctx, t); err != nil {
			return report, err
		}
	}
	return report, nil
}

// shared returns the directory environment the tests' preparations share,
// making it on first use (a bench of tests without one makes none).
func (b *bencher) shared() (*fixedEnv, error) {
	if b.fixed == nil {
		env, err := newSharedEnv(b.report.Baseline().Server)
		if err != nil {
			return nil, err
		}
		b.fixed = env
	}
	return b.fixed, nil
}

// closeShared removes the shared environment, if one was made.
func (b *bencher) closeShared() error {
	if b.fixed == nil {
		return nil
	}
	err := b.fixed.close()
	b.fixed = nil
	return err
}

// prepareTest runs a test's preparation, once per bench.
func (b *bencher) prepareTest(ctx context.Context, t test, tools map[string]string) error {
	if t.prepare == nil {
		return nil
	}
	env, err := b.shared()
	if err != nil {
		return err
	}
	fmt.Fprintf(b.progress, "preparing %s\n", t.Title)
	return env.prepareOnce(ctx, t.ID, t.prepare, tools)
}

// useLab loads the named lab, or brings it up (with routers from the slim
// binary, if given) if it is not up; broughtUp says which.
func useLab(opts Options, progress io.Writer) (l *lab.Lab, broughtUp bool, err error) {
	name, slim := opts.LabName, opts.Slim
	containers := labContainersPerHost
	if opts.Secure {
		containers = 2
	}
	l, err = lab.Load(name)
	if err == nil {
		if err := l.Check(); err != nil {
			return nil, false, err
		}
		fmt.Fprintf(progress, "using lab %s, which is up\n", name)
		return l, false, nil
	}
	if !errors.Is(err, lab.ErrNotUp) {
		return nil, false, err
	}
	fmt.Fprintf(progress, "bringing up lab %s: %d hosts, %d containers each\n", name, labHosts, containers)
	l, err = lab.Up(lab.Spec{Name: name, Hosts: labHosts, Containers: containers})
	if err != nil {
		return nil, false, fmt.Errorf("bringing up lab %s: %w", name, err)
	}
	if slim != "" {
		if err := l.StartRouters(slim); err != nil {
			return nil, false, errors.Join(fmt.Errorf("starting routers: %w", err), lab.Down(name))
		}
	}
	return l, true, nil
}

// releaseLab takes down a lab that Run brought up, unless it is to be kept.
func releaseLab(name string, keep bool, progress io.Writer) error {
	if keep {
		fmt.Fprintf(progress, "leaving lab %s up (slim lab down --name %s)\n", name, name)
		return nil
	}
	fmt.Fprintf(progress, "taking down lab %s\n", name)
	if err := lab.Down(name); err != nil {
		return fmt.Errorf("taking down lab %s: %w", name, err)
	}
	return nil
}

// bencher runs the samples of a bench and records them.
type bencher struct {
	opts     Options
	report   *Report
	progress io.Writer
	step     int // samples started or skipped so far
	total    int // samples in the whole bench
	fixed    *fixedEnv
}

// runTest takes every sample of a test: its runs, alternating the
// scenarios within each. The first failure ends the test and is recorded;
// only a cancellation is returned.
func (b *bencher) runTest(ctx context.Context, t test) error {
	samples := b.opts.Runs * len(b.report.Scenarios)
	for _, m := range t.Metrics {
		b.report.metric(t.ID, m)
	}
	tools, err := lookTools(t.Tools)
	if err == nil {
		err = b.prepareTest(ctx, t, tools)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.skip(t, samples, err)
		return nil
	}
	for run := 1; run <= b.opts.Runs; run++ {
		for _, scenario := range b.report.Scenarios {
			if err := ctx.Err(); err != nil {
				return err
			}
			b.step++
			samples--
			fmt.Fprintf(b.progress, "[%d/%d] %s %s run %d/%d … ", b.step, b.total, scenario.Name, t.Title, run, b.opts.Runs)
			values, err := b.takeSample(ctx, t, scenario, tools)
			if ctxErr := ctx.Err(); ctxErr != nil {
				fmt.Fprintln(b.progress, "interrupted")
				return ctxErr
			}
			if err != nil {
				b.skip(t, samples, fmt.Errorf("%s run %d: %w", scenario.Name, run, err))
				return nil
			}
			var shown []string
			for _, m := range t.Metrics {
				b.report.record(t.ID, m, scenario.Name, values[m.ID])
				shown = append(shown, formatValue(values[m.ID])+" "+m.Unit)
			}
			fmt.Fprintln(b.progress, strings.Join(shown, ", "))
		}
	}
	return nil
}

// skip records a test's failure and skips its remaining samples.
func (b *bencher) skip(t test, remaining int, err error) {
	b.report.Failures = append(b.report.Failures, Failure{Test: t.ID, Err: err})
	b.step += remaining
	fmt.Fprintf(b.progress, "%s failed: %v\n", t.Title, err)
}

// takeSample runs one sample of a test in a temporary directory, checking
// that it produced every metric of the test.
func (b *bencher) takeSample(ctx context.Context, t test, scenario Scenario, tools map[string]string) (values map[string]float64, err error) {
	dir, err := os.MkdirTemp("", "slim-bench-")
	if err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	defer func() {
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("removing temporary directory: %w", rmErr))
		}
	}()
	s := &sample{Scenario: scenario, duration: b.opts.Duration, dir: dir, tools: tools, fixed: b.fixed}
	overlayBefore, err := overlayBytes(scenario)
	if err != nil {
		return nil, err
	}
	if values, err = t.measure(ctx, s); err != nil {
		return nil, err
	}
	if err := checkAccelerated(scenario, overlayBefore); err != nil {
		return nil, err
	}
	for _, m := range t.Metrics {
		v, ok := values[m.ID]
		if !ok {
			return nil, fmt.Errorf("%s produced no %s", t.Title, m.Title())
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s produced %v for %s", t.Title, v, m.Title())
		}
	}
	return values, nil
}

// maxOverlayBytes is how much an accelerated sample may send over the
// overlay (stray ARP and the like) before it counts as not accelerated.
const maxOverlayBytes = 1 << 20

func overlayBytes(s Scenario) (uint64, error) {
	if !s.Accelerated {
		return 0, nil
	}
	return s.ServerHost.VXLANBytes()
}

// checkAccelerated fails a sample of an accelerated column whose traffic
// went over the overlay: its figures would be the overlay's.
func checkAccelerated(s Scenario, before uint64) error {
	if !s.Accelerated {
		return nil
	}
	after, err := s.ServerHost.VXLANBytes()
	if err != nil {
		return err
	}
	if after-before > maxOverlayBytes {
		return fmt.Errorf("%d bytes crossed %s's VXLAN device: the %s column was not accelerated", after-before, s.ServerHost.Name, s.Name)
	}
	return nil
}
