package bench

import (
	"bytes"
	"context"
	"testing"
	"time"
)

const supervisedLab = "benchsup"

// TestIntegrationBenchSupervised runs the supervised mode's CRR on a lab:
// every column measures, the accelerated ones with their traffic off
// VXLAN (the bench fails a sample otherwise), and the notes state the
// setup cost.
func TestIntegrationBenchSupervised(t *testing.T) {
	skipUnlessBenchCanRun(t)
	if _, err := lookGo(); err != nil {
		t.Fatal(err)
	}
	started := recordServers(t)
	prepareLab(t, supervisedLab)
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	report, err := Run(ctx, Options{LabName: supervisedLab, Duration: time.Second, Runs: 1, Progress: &progress,
		Slim: buildSlim(t), Supervised: true, Only: []string{"crr"}})
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, f := range report.Failures {
		t.Errorf("test %s failed: %v", f.Test, f.Err)
	}
	var names []string
	for _, sc := range report.Scenarios {
		names = append(names, sc.Name)
		for _, m := range report.Metrics {
			if v, ok := m.Median(sc.Name); !ok || v <= 0 {
				t.Errorf("%s in %s: %v (measured: %v), want a positive value", m.Title(), sc.Name, v, ok)
			}
		}
	}
	want := []string{columnHost, columnOverlay, columnPreloaded, columnSupervised, columnSupervisedC}
	if len(names) != len(want) {
		t.Errorf("columns %v, want %v", names, want)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, report); err != nil {
		t.Fatal(err)
	}
	t.Logf("results:\n%s", table.String())
	if !bytes.Contains(table.Bytes(), []byte("setup cost of the supervised path over the preloaded one")) {
		t.Errorf("no setup cost in the notes")
	}
	checkLabGone(t, supervisedLab)
	checkServersGone(t, started(), len(want))
}
