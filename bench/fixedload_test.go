package bench

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTargetRate(t *testing.T) {
	app := fixedApps[0]
	r := &Report{}
	for _, v := range []float64{100000, 80000, 90000} {
		r.record(app.ID, app.peakMetric(), "overlay", v)
	}
	r.record(app.ID, app.peakMetric(), "host", 150000)
	rate, err := targetRate(r, app, 0.7)
	if err != nil || rate != 63000 {
		t.Errorf("rate %v, %v: want 70%% of the overlay's median peak, 63000", rate, err)
	}
	if _, err := targetRate(&Report{}, app, 0.7); err == nil {
		t.Error("no peak measured: no error")
	}
	tiny := &Report{}
	tiny.record(app.ID, app.peakMetric(), "overlay", 1)
	if _, err := targetRate(tiny, app, 0.1); err == nil {
		t.Error("a load below 1 op/s: no error")
	}
}

func TestSelectFixedApps(t *testing.T) {
	all, err := selectFixedApps(nil)
	if err != nil || len(all) != 5 {
		t.Fatalf("%d applications, %v", len(all), err)
	}
	got, err := selectFixedApps([]string{"kafka", "memcached"})
	if err != nil || len(got) != 2 || got[0].ID != "memcached" || got[1].ID != "kafka" {
		t.Errorf("selected %v, %v: want memcached then kafka, in the usual order", got, err)
	}
	if _, err := selectFixedApps([]string{"iperf3"}); err == nil || !strings.Contains(err.Error(), "memcached, nginx, redis, postgres, kafka") {
		t.Errorf("unknown application: %v", err)
	}
}

func TestFixedLoadOptions(t *testing.T) {
	base := Options{LabName: "bench", Duration: time.Second, Runs: 1, FixedLoad: true, LoadFraction: 0.7}
	if err := base.Validate(); err != nil {
		t.Errorf("valid options: %v", err)
	}
	for name, change := range map[string]func(*Options){
		"no load":           func(o *Options) { o.LoadFraction = 0 },
		"load above peak":   func(o *Options) { o.LoadFraction = 1.5 },
		"usual test":        func(o *Options) { o.Only = []string{"tcp_rr"} },
		"unknown app":       func(o *Options) { o.Only = []string{"mysql"} },
		"negative load":     func(o *Options) { o.LoadFraction = -0.5 },
		"load not a number": func(o *Options) { o.LoadFraction = math.NaN() },
	} {
		o := base
		change(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// And the usual mode does not know the fixed-load applications.
	usual := Options{LabName: "bench", Duration: time.Second, Runs: 1, Only: []string{"postgres"}}
	if err := usual.Validate(); err == nil {
		t.Error("postgres accepted without --fixed-load")
	}
}

// Every row of an application gets its own value, in order.
func TestFixedValues(t *testing.T) {
	app := fixedApps[1]
	r := loadResult{Achieved: 2, P50: 3, P99: 4, P999: 5, ServiceP50: 6, LagP50: 12}
	cpu := cpuPerOp{Client: 7, Server: 8, Softirq: 10, Ksoftirqd: 11}
	values := app.fixedValues(1, r, cpu)
	want := []float64{1, 2, 3, 4, 5, 6, 7, 8, 15, 10, 11, 12}
	metrics := app.fixedMetrics()
	if len(values) != len(metrics) || len(metrics) != len(want) {
		t.Fatalf("%d values for %d metrics", len(values), len(metrics))
	}
	for i, m := range metrics {
		if values[m.ID] != want[i] {
			t.Errorf("%s = %v, want %v", m.ID, values[m.ID], want[i])
		}
		if !strings.HasPrefix(m.ID, app.ID+"_") {
			t.Errorf("metric %s does not belong to %s", m.ID, app.ID)
		}
	}
}

func TestFixedClients(t *testing.T) {
	s := &sample{Scenario: Scenario{ServerAddr: netip.MustParseAddr("198.19.1.2")}, duration: 5 * time.Second, dir: "/tmp/s",
		fixed: &fixedEnv{loadgen: "/tmp/env/slim-loadgen", kafkaClasses: "/tmp/env/kafka"}}
	byID := map[string]fixedApp{}
	for _, app := range fixedApps {
		byID[app.ID] = app
	}
	memcached := byID["memcached"].client(byID["memcached"], s, 0)
	if memcached[0] != "/tmp/env/slim-loadgen" || slices.Contains(memcached, "--rate") ||
		!containsRun(memcached, "--host", "198.19.1.2", "--port", "11211") || !containsRun(memcached, "--duration", "5") {
		t.Errorf("memcached peak client: %v", memcached)
	}
	nginx := byID["nginx"].client(byID["nginx"], s, 1234.5)
	if !containsRun(nginx, "--proto", "http") || !containsRun(nginx, "--rate", "1234.5") || !containsRun(nginx, "--path", "/1k.html") {
		t.Errorf("nginx client: %v", nginx)
	}
	pg := byID["postgres"].client(byID["postgres"], s, 900)
	if pg[0] != pgTool("pgbench") || !containsRun(pg, "-T", "6") || !containsRun(pg, "-P", "1") ||
		!containsRun(pg, "--rate", "900") || !containsRun(pg, "--log-prefix", "/tmp/s/pgbench_log") || pg[len(pg)-1] != "postgres" {
		t.Errorf("pgbench: %v", pg)
	}
	kafka := byID["kafka"].client(byID["kafka"], s, 1000)
	if kafka[0] != "java" || !slices.Contains(kafka, "-Djava.net.preferIPv4Stack=true") ||
		!containsRun(kafka, "client", "198.19.1.2", "9092", "1000", "2", "5", "100", "2") {
		t.Errorf("kafka client: %v", kafka)
	}
	if !byID["postgres"].marks.start("stderr", "progress: 1.0 s, 5000.0 tps, lat 0.2 ms stddev 0.1") ||
		byID["postgres"].marks.start("stdout", "progress: 1.0 s") || !byID["memcached"].marks.end("stdout", markerPrefix+"end") {
		t.Error("client marks not recognised")
	}
}

// containsRun reports whether want appears in argv as consecutive
// arguments.
func containsRun(argv []string, want ...string) bool {
	for i := 0; i+len(want) <= len(argv); i++ {
		if slices.Equal(argv[i:i+len(want)], want) {
			return true
		}
	}
	return false
}
