package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
	"github.com/slimnet/slim/secure"
)

const fixedLoadLab = "benchitfix"

// TestIntegrationFixedLoad runs the fixed-load mode very briefly on a lab,
// with the secure column (whose programs the secure router moves into
// cgroups of its own): memcached under slim-loadgen, PostgreSQL under
// pgbench and the Kafka stand-in's JVMs, whose connections the shim must
// accelerate like any glibc program's (a sample whose traffic crosses the
// VXLAN device fails).
func TestIntegrationFixedLoad(t *testing.T) {
	testenv.Integration(t)
	for _, f := range secure.Probe().Missing() {
		testenv.KernelFeature(t, f.Name+" (the secure column needs it)", errors.New(f.State()))
	}
	ids := []string{"memcached", "postgres", "kafka"}
	apps, err := selectFixedApps(ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, app := range apps {
		if _, err := lookTools(app.Tools); err != nil {
			testenv.Require(t, false, fmt.Sprintf("integration test: %v (make deps installs it)", err))
		}
	}
	started := recordServers(t)
	prepareLab(t, fixedLoadLab)
	envsBefore := fixedEnvDirs(t)
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	report, err := Run(ctx, Options{LabName: fixedLoadLab, Duration: time.Second, Runs: 1, Only: ids, Slim: buildSlim(t),
		Secure: true, FixedLoad: true, LoadFraction: 0.5, Progress: &progress})
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, f := range report.Failures {
		t.Errorf("%s failed: %v", f.Test, f.Err)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, report); err != nil {
		t.Fatal(err)
	}
	t.Logf("results:\n%s", table.String())
	columns := []string{"host", "overlay", "slim", "secure"}
	for i, sc := range report.Scenarios {
		if i >= len(columns) || sc.Name != columns[i] {
			t.Fatalf("columns %v, want %v", report.Scenarios, columns)
		}
	}
	for _, app := range apps {
		checkFixedRows(t, report, app, columns)
	}
	if len(report.Notes) == 0 || len(paperRows(report)) == 0 {
		t.Errorf("no notes on CPU accounting (%d) or no comparison with the paper (%d rows)", len(report.Notes), len(paperRows(report)))
	}
	checkLabGone(t, fixedLoadLab)
	checkServersGone(t, started(), 0)
	checkBenchCgroupsGone(t)
	if after := fixedEnvDirs(t); len(after) > len(envsBefore) {
		t.Errorf("the fixed-load directory is still there: %v", after)
	}
}

// checkFixedRows checks an application's rows as a user reading the
// table would: a peak in every column; the same offered load in every
// column; CPU per operation on both hosts; percentiles in order.
func checkFixedRows(t *testing.T, r *Report, app fixedApp, columns []string) {
	t.Helper()
	value := func(suffix, column string) float64 {
		m := r.metricByID(app.ID + "_" + suffix)
		if m == nil {
			t.Fatalf("no row %s_%s", app.ID, suffix)
		}
		v, ok := m.Median(column)
		if !ok {
			t.Errorf("%s in %s: not measured", m.Title(), column)
		}
		return v
	}
	offered := value("offered", "overlay")
	if offered <= 0 {
		t.Errorf("%s: offered load %v", app.Title, offered)
	}
	for _, column := range columns {
		if v := value("peak", column); v <= 0 {
			t.Errorf("%s peak in %s: %v", app.Title, column, v)
		}
		if v := value("offered", column); v != offered {
			t.Errorf("%s offered load in %s: %v, not the %v of the overlay", app.Title, column, v, offered)
		}
		for _, suffix := range []string{"achieved", "cpu_client", "cpu_server", "cpu_total", "service_p50"} {
			if v := value(suffix, column); !(v > 0) {
				t.Errorf("%s %s in %s: %v, want a positive value", app.Title, suffix, column, v)
			}
		}
		p50, p99, p999 := value("p50", column), value("p99", column), value("p999", column)
		if !(p50 > 0 && p50 <= p99 && p99 <= p999) {
			t.Errorf("%s in %s: p50 %v, p99 %v, p99.9 %v: want positive and in order", app.Title, column, p50, p99, p999)
		}
	}
}

// checkBenchCgroupsGone checks that no cgroup of this process's benches is
// left.
func checkBenchCgroupsGone(t *testing.T) {
	t.Helper()
	root, err := secure.Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, fmt.Sprintf("slim-bench-%d", os.Getpid()))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the bench's cgroups are still there (%v)", err)
	}
}

func fixedEnvDirs(t *testing.T) []string {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), "slim-bench-fixed-*"))
	if err != nil {
		t.Fatal(err)
	}
	return slices.Clip(dirs)
}
