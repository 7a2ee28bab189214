package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/lab"
)

func sampleReport() *Report {
	node := func(name, addr string) lab.Node {
		return lab.Node{Name: name, Netns: "t-" + name, Addr: netip.MustParseAddr(addr)}
	}
	r := &Report{
		Lab:      "bench",
		Duration: 5 * time.Second,
		Runs:     3,
		Scenarios: []Scenario{
			{Name: "host", Server: node("h1", "198.18.0.1"), Client: node("h2", "198.18.0.2"), ServerAddr: netip.MustParseAddr("198.18.0.1"), Wrap: unwrapped},
			{Name: "overlay", Server: node("h1-c1", "198.19.1.2"), Client: node("h2-c1", "198.19.2.2"), ServerAddr: netip.MustParseAddr("198.19.1.2"), Wrap: unwrapped},
		},
	}
	for _, v := range []float64{27.1, 27.65, 28} {
		r.record("iperf3", metricThroughput, "host", v)
	}
	for _, v := range []float64{23.78, 23, 24} {
		r.record("iperf3", metricThroughput, "overlay", v)
	}
	r.record("iperf3", metricCPUPerGB, "host", 0.456)
	r.record("iperf3", metricCPUPerGB, "overlay", 0.593)
	r.record("tcp_rr", metricRRRate, "host", 44724)
	r.record("tcp_rr", metricRRRate, "overlay", 33990)
	r.metric("nginx", metricNginx) // a test that failed before any sample
	r.Failures = append(r.Failures, Failure{Test: "nginx", Err: errors.New("nginx not installed: run make deps")})
	return r
}

func TestWriteTable(t *testing.T) {
	var out bytes.Buffer
	if err := WriteTable(&out, sampleReport()); err != nil {
		t.Fatal(err)
	}
	want := `metric                   host    overlay   overlay/host
iperf3 throughput Gb/s   27.65   23.78     0.86x (0.83-0.88)
CPU s/GB                 0.456   0.593     1.30x
TCP_RR trans/s           44724   33990     0.76x
nginx+wrk req/s          -       -         -

median of 3 runs of 5s per scenario, scenarios alternated; lab bench
ratios: of the medians, then (lowest-highest) of the ratios within each run
  host     client h2 -> server h1 at 198.18.0.1
  overlay  client h2-c1 -> server h1-c1 at 198.19.1.2

failed tests:
  nginx: nginx not installed: run make deps
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestWriteJSON(t *testing.T) {
	var out bytes.Buffer
	if err := WriteJSON(&out, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var doc jsonReport
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v in:\n%s", err, out.String())
	}
	if doc.Lab != "bench" || doc.DurationSeconds != 5 || doc.Runs != 3 || doc.Statistic != "median" || doc.Baseline != "host" {
		t.Errorf("settings: %+v", doc)
	}
	if len(doc.Scenarios) != 2 || doc.Scenarios[1] != (jsonScenario{Name: "overlay", Client: "h2-c1", Server: "h1-c1", ServerAddr: "198.19.1.2"}) {
		t.Errorf("scenarios: %+v", doc.Scenarios)
	}
	if len(doc.Metrics) != 4 {
		t.Fatalf("%d metrics, want 4", len(doc.Metrics))
	}
	throughput := doc.Metrics[0]
	if throughput.ID != "iperf3_throughput" || throughput.Name != "iperf3 throughput" || throughput.Unit != "Gb/s" || throughput.Test != "iperf3" {
		t.Errorf("throughput metric: %+v", throughput)
	}
	if throughput.Median["host"] != 27.65 || throughput.Median["overlay"] != 23.78 {
		t.Errorf("throughput medians: %v", throughput.Median)
	}
	if got := throughput.Sample["overlay"]; len(got) != 3 || got[0] != 23.78 || got[1] != 23 || got[2] != 24 {
		t.Errorf("overlay samples %v, want them all in run order", got)
	}
	if ratio := throughput.Ratio["overlay/host"]; !near(ratio, 23.78/27.65) {
		t.Errorf("ratio %v, want %v", ratio, 23.78/27.65)
	}
	// Per run: 23.78/27.1, 23/27.65, 24/28.
	if spread := throughput.Spread["overlay/host"]; !near(spread[0], 23/27.65) || !near(spread[1], 23.78/27.1) {
		t.Errorf("ratio spread %v, want [%v %v]", spread, 23/27.65, 23.78/27.1)
	}
	if spread, ok := doc.Metrics[1].Spread["overlay/host"]; !ok || spread[0] != spread[1] {
		t.Errorf("spread of a metric measured once: %v (%v), want its one ratio twice", spread, ok)
	}
	failed := doc.Metrics[3]
	if len(failed.Median) != 0 || len(failed.Ratio) != 0 || len(failed.Spread) != 0 || len(failed.Sample) != 0 {
		t.Errorf("failed metric has values: %+v", failed)
	}
	if len(doc.Failures) != 1 || doc.Failures[0] != (jsonFailure{Test: "nginx", Error: "nginx not installed: run make deps"}) {
		t.Errorf("failures: %+v", doc.Failures)
	}
}

func TestFormatValue(t *testing.T) {
	for v, want := range map[float64]string{
		27.654:   "27.65",
		0.45612:  "0.4561",
		22.3:     "22.3",
		44724.4:  "44724",
		999.96:   "1000",
		123456.7: "123457",
		0:        "0",
	} {
		if got := formatValue(v); got != want {
			t.Errorf("formatValue(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestWriteTableComparisons checks the second table: each accelerated
// column against each routed anchor, with the range of the per-run ratios.
func TestWriteTableComparisons(t *testing.T) {
	r := sampleReport()
	r.Metrics, r.Failures = nil, nil
	node := lab.Node{Name: "n", Addr: netip.MustParseAddr("198.18.129.2")}
	r.Scenarios = append(r.Scenarios,
		Scenario{Name: routedColumn, Server: node, Client: node, ServerAddr: node.Addr},
		Scenario{Name: "slim", Server: node, Client: node, ServerAddr: node.Addr, Accelerated: true})
	for run, v := range map[string][]float64{"host": {10, 20, 30}, "overlay": {6, 12, 18}, routedColumn: {8, 16, 24}, "slim": {8, 20, 24}} {
		for _, x := range v {
			r.record("tcp_crr", metricCRRRate, run, x)
		}
	}
	if got := r.Comparisons(); len(got) != 1 || got[0] != [2]string{"slim", routedColumn} {
		t.Fatalf("comparisons %v, want slim/routed", got)
	}
	var out bytes.Buffer
	if err := WriteTable(&out, r); err != nil {
		t.Fatal(err)
	}
	want := "against routed containers (no tunnel):\n" +
		"metric           slim/routed\n" +
		"TCP_CRR conn/s   1.25x (1.00-1.25)\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("table:\n%s\nwant it to contain:\n%s", out.String(), want)
	}
	var doc bytes.Buffer
	if err := WriteJSON(&doc, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(doc.String(), `"slim/routed": 1.25`) {
		t.Errorf("JSON has no slim/routed ratio:\n%s", doc.String())
	}
}
