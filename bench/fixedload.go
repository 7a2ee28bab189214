package bench

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// The fixed-load mode (--fixed-load) measures what the paper measured: the
// cost of the same work. Each application is first loaded in a closed loop
// (each connection sends its next request when answered) in every column,
// for its peak; then at a fixed offered load, the same in every column, a
// fraction of the overlay column's median peak: latency percentiles from
// an open-loop client (each latency counted from when the request was
// due), and the CPU time per operation of the client's and the server's
// processes (see cpuacct.go).

// DefaultLoadFraction is the offered load of the fixed-load mode, as a
// fraction of the overlay column's peak.
const DefaultLoadFraction = 0.7

// fixedApp is one application of the fixed-load mode.
type fixedApp struct {
	ID    string // what --only selects it by
	Title string // how rows and progress lines name it
	Op    string // one operation: "op", "req", "tx", "msg"
	// Tools are the executables it needs besides slim-loadgen.
	Tools []string
	// Warmup is how long the client loads the server before the measured
	// part; Drain how long it waits for answers after it.
	Warmup, Drain time.Duration
	// prepare readies what every sample of the application shares, once
	// per bench (optional).
	prepare preparation
	// server is the server's command line and how to tell it is ready.
	server func(s *sample) ([]string, readiness, error)
	// client is the client's command line at rate operations per second
	// (0: a closed loop, for the peak).
	client func(app fixedApp, s *sample, rate float64) []string
	// marks tells the lines the client prints at the start and the end
	// of its measured part; without an end mark it ends when the client
	// exits.
	marks clientMarks
	// result reads what the client measured in [from, until].
	result func(s *sample, stdout []byte, from, until time.Time) (loadResult, error)
}

// clientMarks recognise the lines that mark a client's measured part.
type clientMarks struct {
	start, end func(stream, line string) bool
}

// loadgenMarks are the marks of slim-loadgen and the Kafka stand-in.
var loadgenMarks = clientMarks{
	start: func(stream, line string) bool { return stream == "stdout" && line == markerPrefix+"start" },
	end:   func(stream, line string) bool { return stream == "stdout" && line == markerPrefix+"end" },
}

// The rows of an application in the fixed-load mode.
func (app fixedApp) metric(suffix, label, unit string) Metric {
	return Metric{ID: app.ID + "_" + suffix, Label: app.Title + " " + label, Unit: unit}
}

func (app fixedApp) peakMetric() Metric {
	return app.metric("peak", "peak (closed loop)", app.Op+"/s")
}

func (app fixedApp) fixedMetrics() []Metric {
	perOp := "us/" + app.Op
	return []Metric{
		app.metric("offered", "offered load", app.Op+"/s"),
		app.metric("achieved", "achieved", app.Op+"/s"),
		app.metric("p50", "p50 latency", "us"),
		app.metric("p99", "p99 latency", "us"),
		app.metric("p999", "p99.9 latency", "us"),
		app.metric("service_p50", "p50 latency from send", "us"),
		app.metric("cpu_client", "client CPU", perOp),
		app.metric("cpu_server", "server CPU", perOp),
		app.metric("cpu_total", "CPU both hosts", perOp),
		app.metric("softirq", "softirq (machine)", perOp),
		app.metric("ksoftirqd", "ksoftirqd (machine)", perOp),
		app.metric("lag", "client send lag p50", "us"),
	}
}

// fixedValues are the values of the rows of a fixed-load sample, by
// metric ID.
func (app fixedApp) fixedValues(rate float64, r loadResult, cpu cpuPerOp) map[string]float64 {
	values := []float64{rate, r.Achieved, r.P50, r.P99, r.P999, r.ServiceP50,
		cpu.Client, cpu.Server, cpu.Client + cpu.Server, cpu.Softirq, cpu.Ksoftirqd, r.LagP50}
	byID := map[string]float64{}
	for i, m := range app.fixedMetrics() {
		byID[m.ID] = values[i]
	}
	return byID
}

// peakTest and fixedTest are the two phases of an application as tests
// of the bench; rate is the offered load of the second.
func (app fixedApp) peakTest() test {
	return test{
		ID: app.ID, Title: app.Title + " peak", Tools: app.Tools, Metrics: []Metric{app.peakMetric()},
		measure: func(ctx context.Context, s *sample) (map[string]float64, error) {
			r, _, err := measureFixed(ctx, s, app, 0)
			if err != nil {
				return nil, err
			}
			return map[string]float64{app.peakMetric().ID: r.Achieved}, nil
		},
	}
}

func (app fixedApp) fixedTest(rate float64) test {
	return test{
		ID: app.ID, Title: fmt.Sprintf("%s at %s %s/s", app.Title, formatValue(rate), app.Op), Tools: app.Tools,
		Metrics: app.fixedMetrics(),
		measure: func(ctx context.Context, s *sample) (map[string]float64, error) {
			r, cpu, err := measureFixed(ctx, s, app, rate)
			if err != nil {
				return nil, err
			}
			return app.fixedValues(rate, r, cpu), nil
		},
	}
}

// targetRate is the offered load of the fixed phase: fraction of the
// median peak of the overlay column, rounded to a whole rate.
func targetRate(r *Report, app fixedApp, fraction float64) (float64, error) {
	for _, m := range r.Metrics {
		if m.ID != app.peakMetric().ID {
			continue
		}
		peak, ok := m.Median(overlayColumn)
		if !ok || peak <= 0 {
			break
		}
		rate := float64(int64(peak*fraction + 0.5))
		if rate < 1 {
			return 0, fmt.Errorf("%v of the overlay's peak of %v %s/s is less than 1 %s/s", fraction, peak, app.Op, app.Op)
		}
		return rate, nil
	}
	return 0, fmt.Errorf("no peak of %s in the %s column to set the load from", app.Title, overlayColumn)
}

// overlayColumn is the column whose peak sets the fixed load.
const overlayColumn = "overlay"

// FixedLoadIDs lists the applications of the fixed-load mode, in the order
// they run.
func FixedLoadIDs() []string {
	ids := make([]string, len(fixedApps))
	for i, app := range fixedApps {
		ids[i] = app.ID
	}
	return ids
}

// selectFixedApps returns the applications with the given IDs, in their
// usual order; all of them if ids is empty.
func selectFixedApps(ids []string) ([]fixedApp, error) {
	if len(ids) == 0 {
		return fixedApps, nil
	}
	wanted := map[string]bool{}
	for _, id := range ids {
		wanted[id] = true
	}
	var selected []fixedApp
	for _, app := range fixedApps {
		if wanted[app.ID] {
			selected = append(selected, app)
			delete(wanted, app.ID)
		}
	}
	for id := range wanted {
		return nil, fmt.Errorf("unknown application %q for --fixed-load (applications: %s)", id, strings.Join(FixedLoadIDs(), ", "))
	}
	return selected, nil
}
