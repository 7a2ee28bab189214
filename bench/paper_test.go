package bench

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/lab"
)

// fixedReport is a fixed-load report of memcached in host, overlay and
// slim over three runs.
func fixedReport() *Report {
	node := func(name string) lab.Node { return lab.Node{Name: name} }
	addr := netip.MustParseAddr("198.19.1.2")
	r := &Report{Lab: "bench", Duration: 5 * time.Second, Runs: 3, FixedLoad: true, LoadFraction: 0.7,
		Scenarios: []Scenario{
			{Name: "host", Server: node("h1"), Client: node("h2"), ServerAddr: addr},
			{Name: "overlay", Server: node("h1-c1"), Client: node("h2-c1"), ServerAddr: addr},
			{Name: "slim", Server: node("h1-c1"), Client: node("h2-c1"), ServerAddr: addr},
		}}
	app := fixedApps[0]
	samples := map[string]map[string][]float64{
		"peak":        {"host": {150, 160, 155}, "overlay": {100, 80, 90}, "slim": {170, 150, 160}},
		"service_p50": {"host": {20, 21, 22}, "overlay": {40, 40, 50}, "slim": {20, 25, 30}},
		"p99":         {"host": {100, 100, 100}, "overlay": {200, 100, 400}, "slim": {100, 100, 100}},
		"cpu_server":  {"host": {5, 5, 5}, "overlay": {10, 10, 10}, "slim": {8, 7, 9}},
		"cpu_total":   {"host": {10, 10, 10}, "overlay": {10, 10, 10}, "slim": {11, 12, 10}},
	}
	for _, m := range append([]Metric{app.peakMetric()}, app.fixedMetrics()...) {
		for column, values := range samples[strings.TrimPrefix(m.ID, app.ID+"_")] {
			for _, v := range values {
				r.record(app.ID, m, column, v)
			}
		}
	}
	return r
}

func TestWritePaperTable(t *testing.T) {
	var out bytes.Buffer
	if err := WritePaperTable(&out, fixedReport()); err != nil {
		t.Fatal(err)
	}
	want := `| app | measure | paper: Slim vs Weave | ours: slim vs overlay | ours: slim vs host | ours vs paper |
| --- | --- | --- | --- | --- | --- |
| memcached | throughput (peak) | +66…+71% | +78% (+70%…+88%) | +3% (-6%…+13%) | as paper |
| memcached | latency p50 from send | -42% | -40% (-50%…-38%) | +19% (0%…+36%) | smaller |
| memcached | latency p99 from due | — | -50% (-75%…0%) | 0% (0%…0%) |  |
| memcached | CPU/op server | -56…-54% | -20% (-30%…-10%) | +60% (+40%…+80%) | smaller |
| memcached | CPU/op both hosts | — | +10% (0%…+20%) | +10% (0%…+20%) |  |

Ours: median of the per-run ratios (range over 3 runs); CPU/op is the cgroup CPU time per operation at the fixed load, latency at the fixed load, throughput the closed-loop peak.
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestPaperVerdict(t *testing.T) {
	reduction := claim("x", "cpu_server", "CPU", -0.40, -0.22)
	increase := claim("x", "peak", "throughput", 0.66, 0.71)
	for _, c := range []struct {
		claim paperClaim
		ratio float64
		want  string
	}{
		{reduction, 0.70, "as paper"}, // -30%: within the paper's range
		{reduction, 0.78, "as paper"}, // -22%: its weaker end
		{reduction, 0.90, "smaller"},
		{reduction, 1.05, "none or opposite"},
		{increase, 1.70, "as paper"},
		{increase, 1.20, "smaller"},
		{increase, 0.95, "none or opposite"},
		{noClaim("x", "p99", "p99"), 0.5, ""},
	} {
		if got := c.claim.verdict(change{Median: c.ratio, Min: c.ratio, Max: c.ratio, Runs: 1}); got != c.want {
			t.Errorf("paper %v…%v, ours %v: %q, want %q", c.claim.low, c.claim.high, c.ratio, got, c.want)
		}
	}
}

// Without a slim column there is nothing to compare with the paper.
func TestPaperTableNeedsSlim(t *testing.T) {
	r := fixedReport()
	r.Scenarios = r.Scenarios[:2]
	var out bytes.Buffer
	if err := WritePaperTable(&out, r); err != nil || out.Len() != 0 {
		t.Errorf("wrote %q, %v", out.String(), err)
	}
}

// The fixed-load table ends with the comparison, and the JSON document
// carries it and the notes.
func TestFixedLoadReportFormats(t *testing.T) {
	r := fixedReport()
	r.Notes = []string{"client/server CPU: a note"}
	var table bytes.Buffer
	if err := WriteTable(&table, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"memcached peak (closed loop) op/s", "offered load of 70% of the overlay column's median peak",
		"  client/server CPU: a note", "Against the paper", "| memcached | CPU/op server | -56…-54% |"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var doc bytes.Buffer
	if err := WriteJSON(&doc, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"mode": "fixed-load"`, `"load_fraction": 0.7`, `"paper_slim_vs_weave": "-42%"`, `"slim vs overlay": "-40% (-50%…-38%)"`, `"client/server CPU: a note"`} {
		if !strings.Contains(doc.String(), want) {
			t.Errorf("JSON lacks %s:\n%s", want, doc.String())
		}
	}
}
