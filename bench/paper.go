package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// The paper's figures (Slim against Weave, NSDI 2019) beside ours: Slim
// against our overlay and against host networking, from one fixed-load
// run. The paper's CPU figures are those of the server (the abstract: "the
// CPU utilization of ... a web server ..., a database server"), so the
// server's CPU per operation is what they are compared with; both hosts
// together are shown too. Its latencies come from closed-loop tools, which
// time a request from when it is sent: compared with our p50 from send;
// our p99 is from when each request was due.

// paperClaim is one row of the comparison: a metric of an application,
// and the paper's change for it as a fraction (-0.42 is 42% less), a range
// from low to high; claimed is false where the paper gives none.
type paperClaim struct {
	app, metric, what string
	claimed           bool
	low, high         float64
}

func claim(app, metric, what string, low, high float64) paperClaim {
	return paperClaim{app: app, metric: metric, what: what, claimed: true, low: low, high: high}
}

func noClaim(app, metric, what string) paperClaim {
	return paperClaim{app: app, metric: metric, what: what}
}

// paperClaims are the rows, in order.
var paperClaims = []paperClaim{
	claim("memcached", "peak", "throughput (peak)", 0.66, 0.71),
	claim("memcached", "service_p50", "latency p50 from send", -0.42, -0.42),
	noClaim("memcached", "p99", "latency p99 from due"),
	claim("memcached", "cpu_server", "CPU/op server", -0.56, -0.54),
	noClaim("memcached", "cpu_total", "CPU/op both hosts"),
	noClaim("nginx", "peak", "throughput (peak)"),
	noClaim("nginx", "p99", "latency p99 from due"),
	claim("nginx", "cpu_server", "CPU/op server", -0.40, -0.22),
	noClaim("nginx", "cpu_total", "CPU/op both hosts"),
	noClaim("redis", "peak", "throughput (peak)"),
	noClaim("redis", "p99", "latency p99 from due"),
	noClaim("redis", "cpu_server", "CPU/op server"),
	noClaim("redis", "cpu_total", "CPU/op both hosts"),
	noClaim("postgres", "peak", "throughput (peak)"),
	noClaim("postgres", "p99", "latency p99 from due"),
	claim("postgres", "cpu_server", "CPU/op server", -0.25, -0.22),
	noClaim("postgres", "cpu_total", "CPU/op both hosts"),
	noClaim("kafka", "peak", "throughput (peak)"),
	claim("kafka", "service_p50", "latency p50 from send", -0.28, -0.28),
	noClaim("kafka", "p99", "latency p99 from due"),
	claim("kafka", "cpu_server", "CPU/op server", -0.11, -0.10),
	noClaim("kafka", "cpu_total", "CPU/op both hosts"),
}

// change is a ratio between two columns as the comparison shows it: the
// median of the per-run ratios (each run measures the columns back to
// back) and their range.
type change struct {
	Median, Min, Max float64 // ratios
	Runs             int
}

// pairedChange compares a metric's samples in two columns run by run.
func pairedChange(m *MetricResult, column, against string) (change, bool) {
	a, b := m.Samples[column], m.Samples[against]
	var ratios []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if b[i] != 0 {
			ratios = append(ratios, a[i]/b[i])
		}
	}
	mid, ok := median(ratios)
	if !ok {
		return change{}, false
	}
	return change{Median: mid, Min: slices.Min(ratios), Max: slices.Max(ratios), Runs: len(ratios)}, true
}

// percent shows a ratio as a change: 0.58 is "-42%", 1.004 is "0%".
func percent(ratio float64) string {
	change := math.Round((ratio - 1) * 100)
	if change == 0 {
		return "0%"
	}
	return fmt.Sprintf("%+.0f%%", change)
}

func (c change) String() string {
	if c.Runs < 2 {
		return percent(c.Median)
	}
	return fmt.Sprintf("%s (%s…%s)", percent(c.Median), percent(c.Min), percent(c.Max))
}

// paperText is the paper's figure for a claim.
func (c paperClaim) paperText() string {
	switch {
	case !c.claimed:
		return "—"
	case c.low == c.high:
		return fmt.Sprintf("%+.0f%%", c.low*100)
	}
	return fmt.Sprintf("%+.0f…%+.0f%%", c.low*100, c.high*100)
}

// verdict compares our median change with the paper's: "as paper" if it
// goes as far in the same direction as the paper's weaker figure,
// "smaller" if it goes in the same direction less far, "none or
// opposite" otherwise.
func (c paperClaim) verdict(ours change) string {
	if !c.claimed {
		return ""
	}
	weaker := c.low
	if math.Abs(c.high) < math.Abs(c.low) {
		weaker = c.high
	}
	direction := math.Copysign(1, weaker)
	got := (ours.Median - 1) * direction
	switch {
	case got >= math.Abs(weaker)-1e-9:
		return "as paper"
	case got > 0:
		return "smaller"
	}
	return "none or opposite"
}

// paperRow is one row of the comparison as written.
type paperRow struct {
	App     string            `json:"app"`
	What    string            `json:"what"`
	Metric  string            `json:"metric"`
	Paper   string            `json:"paper_slim_vs_weave"`
	Ours    map[string]string `json:"ours"`
	Verdict string            `json:"verdict,omitempty"`
}

// paperComparisons are the columns of ours: each accelerated column
// against the overlay and against host.
func paperComparisons(r *Report) [][2]string {
	var pairs [][2]string
	for _, sc := range r.Scenarios {
		if sc.Name == "slim" || sc.Name == "secure" {
			pairs = append(pairs, [2]string{sc.Name, overlayColumn}, [2]string{sc.Name, r.Baseline().Name})
		}
	}
	return pairs
}

// paperRows builds the comparison from a fixed-load report: the rows whose
// metric it measured in the slim column.
func paperRows(r *Report) []paperRow {
	pairs := paperComparisons(r)
	var rows []paperRow
	for _, c := range paperClaims {
		m := r.metricByID(c.app + "_" + c.metric)
		if m == nil || len(pairs) == 0 {
			continue
		}
		row := paperRow{App: c.app, What: c.what, Metric: m.ID, Paper: c.paperText(), Ours: map[string]string{}}
		for i, pair := range pairs {
			ch, ok := pairedChange(m, pair[0], pair[1])
			if !ok {
				continue
			}
			row.Ours[pair[0]+" vs "+pair[1]] = ch.String()
			if i == 0 {
				row.Verdict = c.verdict(ch)
			}
		}
		if len(row.Ours) > 0 {
			rows = append(rows, row)
		}
	}
	return rows
}

func (r *Report) metricByID(id string) *MetricResult {
	for _, m := range r.Metrics {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// WritePaperTable writes the comparison with the paper as a Markdown
// table; nothing if the report has no slim column or no fixed-load row.
func WritePaperTable(w io.Writer, r *Report) error {
	rows := paperRows(r)
	if len(rows) == 0 {
		return nil
	}
	header := []string{"app", "measure", "paper: Slim vs Weave"}
	for _, pair := range paperComparisons(r) {
		header = append(header, "ours: "+pair[0]+" vs "+pair[1])
	}
	header = append(header, "ours vs paper")
	var b strings.Builder
	line := func(cells []string) { b.WriteString("| " + strings.Join(cells, " | ") + " |\n") }
	line(header)
	line(slices.Repeat([]string{"---"}, len(header)))
	for _, row := range rows {
		cells := []string{row.App, row.What, row.Paper}
		for _, pair := range paperComparisons(r) {
			cell, ok := row.Ours[pair[0]+" vs "+pair[1]]
			if !ok {
				cell = "-"
			}
			cells = append(cells, cell)
		}
		line(append(cells, row.Verdict))
	}
	fmt.Fprintf(&b, "\nOurs: median of the per-run ratios (range over %s); CPU/op is the cgroup CPU time per operation at the fixed load, latency at the fixed load, throughput the closed-loop peak.\n", r.runsText())
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) runsText() string {
	if r.Runs == 1 {
		return "1 run"
	}
	return fmt.Sprintf("%d runs", r.Runs)
}
