package bench

import (
	"context"
	"errors"
	"fmt"
)

// runFixedLoad runs the fixed-load mode: each application's peak phase in
// every column, then its fixed phase.
func (b *bencher) runFixedLoad(ctx context.Context) (err error) {
	apps, err := selectFixedApps(b.opts.Only)
	if err != nil {
		return err
	}
	b.report.FixedLoad, b.report.LoadFraction = true, b.opts.LoadFraction
	b.report.Notes = append(b.report.Notes, cpuNotes()...)
	b.total = 2 * len(apps) * b.opts.Runs * len(b.report.Scenarios)
	env, err := newFixedEnv(b.report.Baseline().Server)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.close()) }()
	b.fixed = env
	for _, app := range apps {
		if err := b.runFixedApp(ctx, app); err != nil {
			return err
		}
	}
	return nil
}

// runFixedApp runs an application's two phases. A failure of one ends the
// application (recorded once); only a cancellation is returned.
func (b *bencher) runFixedApp(ctx context.Context, app fixedApp) error {
	samples := b.opts.Runs * len(b.report.Scenarios)
	peak := app.peakTest()
	b.report.metric(app.ID, app.peakMetric())
	for _, m := range app.fixedMetrics() {
		b.report.metric(app.ID, m)
	}
	tools, err := lookTools(app.Tools)
	if err == nil {
		fmt.Fprintf(b.progress, "preparing %s\n", app.Title)
		err = b.fixed.prepare(ctx, app, tools)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.skip(peak, 2*samples, err)
		return nil
	}
	failures := len(b.report.Failures)
	if err := b.runTest(ctx, peak); err != nil {
		return err
	}
	if len(b.report.Failures) > failures {
		b.step += samples // the fixed phase cannot run
		return nil
	}
	rate, err := targetRate(b.report, app, b.opts.LoadFraction)
	if err != nil {
		b.skip(test{ID: app.ID, Title: app.Title}, samples, err)
		return nil
	}
	fmt.Fprintf(b.progress, "%s: offered load %s %s/s in every column (%.0f%% of the overlay's median peak)\n",
		app.Title, formatValue(rate), app.Op, 100*b.opts.LoadFraction)
	return b.runTest(ctx, app.fixedTest(rate))
}

// cpuNotes say how the fixed-load mode's CPU figures were counted here.
func cpuNotes() []string {
	notes := []string{
		"client/server CPU: cgroup v2 usage (cpu.stat usage_usec) of the client's and the server's processes, per operation",
	}
	switch on, known := irqTimeAccounting(); {
	case !known:
		notes = append(notes, "softirq: whether the cgroups include the softirq work done in their processes' context is unknown (no /proc/config.gz)")
	case on:
		notes = append(notes, "softirq: this kernel counts softirq time apart (CONFIG_IRQ_TIME_ACCOUNTING=y): packet processing is in no cgroup above, only in the machine's softirq row")
	default:
		notes = append(notes, "softirq: this kernel counts softirq time as the interrupted task's (CONFIG_IRQ_TIME_ACCOUNTING off): packet processing done inline (on veth, a sender runs the receive path too) is in the cgroups above")
	}
	return append(notes,
		"softirq (machine), ksoftirqd (machine): /proc/stat softirq time and the ksoftirqd threads' CPU time of the whole machine, per operation: they overlap the cgroups' and count whatever else runs")
}
