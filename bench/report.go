package bench

import (
	"slices"
	"time"
)

// Report holds the results of a bench.
type Report struct {
	Lab      string
	Duration time.Duration
	Runs     int
	// Scenarios are the columns, baseline first.
	Scenarios []Scenario
	// Metrics are the rows, in the order of the tests.
	Metrics []*MetricResult
	// Failures lists the tests that failed, in the order they ran.
	Failures []Failure
	// FixedLoad is set for the fixed-load mode, whose offered load is
	// LoadFraction times the overlay column's peak; Notes say how its CPU
	// figures were counted.
	FixedLoad    bool
	LoadFraction float64
	Notes        []string
	// Supervised is set for the supervised mode; its Notes say what each
	// column runs and the supervised path's setup cost.
	Supervised bool
}

// MetricResult is one row: a metric's samples in every scenario.
type MetricResult struct {
	Metric
	// Test is the ID of the test that measures the metric.
	Test string
	// Samples holds the value of each run, by scenario name.
	Samples map[string][]float64
}

// Failure is a test that could not be completed.
type Failure struct {
	Test string // test ID
	Err  error
}

// Failed reports whether any test failed.
func (r *Report) Failed() bool { return len(r.Failures) > 0 }

// Baseline is the scenario the others are compared to.
func (r *Report) Baseline() Scenario { return r.Scenarios[0] }

// Median is the median of the metric's samples in a scenario; false if
// there are none.
func (m *MetricResult) Median(scenario string) (float64, bool) {
	return median(m.Samples[scenario])
}

// Ratio is the metric's median in a scenario divided by its median in the
// report's baseline; false if either is missing or the baseline is zero.
func (r *Report) Ratio(m *MetricResult, scenario string) (float64, bool) {
	return m.RatioTo(scenario, r.Baseline().Name)
}

// RatioTo is the metric's median in a scenario divided by its median in
// another; false if either is missing or the other's is zero.
func (m *MetricResult) RatioTo(scenario, against string) (float64, bool) {
	value, ok := m.Median(scenario)
	if !ok {
		return 0, false
	}
	base, ok := m.Median(against)
	if !ok || base == 0 {
		return 0, false
	}
	return value / base, true
}

// Comparisons are the pairs of columns the report compares besides each
// column with the baseline: every accelerated column (slim, secure) with
// every routed anchor (routed, netkit) measured.
func (r *Report) Comparisons() [][2]string {
	var anchors, accelerated []string
	for _, sc := range r.Scenarios {
		switch {
		case sc.Name == routedColumn || sc.Name == netkitColumn:
			anchors = append(anchors, sc.Name)
		case sc.Accelerated:
			accelerated = append(accelerated, sc.Name)
		}
	}
	var pairs [][2]string
	for _, column := range accelerated {
		for _, anchor := range anchors {
			pairs = append(pairs, [2]string{column, anchor})
		}
	}
	return pairs
}

// metric returns the row of a metric, adding it if it is new.
func (r *Report) metric(test string, m Metric) *MetricResult {
	for _, row := range r.Metrics {
		if row.ID == m.ID {
			return row
		}
	}
	row := &MetricResult{Metric: m, Test: test, Samples: map[string][]float64{}}
	r.Metrics = append(r.Metrics, row)
	return row
}

// record adds one sample of a metric in a scenario.
func (r *Report) record(test string, m Metric, scenario string, value float64) {
	row := r.metric(test, m)
	row.Samples[scenario] = append(row.Samples[scenario], value)
}

func median(values []float64) (float64, bool) {
	if len(values) == 0 {
		return 0, false
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	mid := len(sorted) / 2
	if len(sorted)%2 == 1 {
		return sorted[mid], true
	}
	return (sorted[mid-1] + sorted[mid]) / 2, true
}
