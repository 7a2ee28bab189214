package bench

import (
	"strings"
	"testing"
	"time"
)

func TestParsePeerResult(t *testing.T) {
	if v, err := parsePeerResult([]byte("\nresult 1234.500\n")); err != nil || v != 1234.5 {
		t.Errorf("parsePeerResult: %v, %v; want 1234.5", v, err)
	}
	for _, bad := range []string{"", "result 0\n", "result -3\n", "result x\n", "peer: connect: refused\n"} {
		if _, err := parsePeerResult([]byte(bad)); err == nil {
			t.Errorf("parsePeerResult(%q) succeeded", bad)
		}
	}
}

func TestSupervisedOptions(t *testing.T) {
	good := Options{LabName: "bench", Duration: time.Second, Runs: 1, Slim: "/bin/slim", Supervised: true, Only: []string{"crr", "rr"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	if tests, _ := selectPeerTests(good.Only); len(tests) != 2 || tests[0].ID != "rr" || tests[1].ID != "crr" {
		t.Errorf("selected %v, want rr then crr", tests)
	}
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no slim", func(o *Options) { o.Slim = "" }, "needs the slim column"},
		{"fixed load", func(o *Options) { o.FixedLoad, o.LoadFraction = true, 0.5 }, "different modes"},
		{"a test of the usual mode", func(o *Options) { o.Only = []string{"iperf3"} }, `unknown test "iperf3" with --supervised`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.change(&o)
			if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestSupervisedNotesSetupCost(t *testing.T) {
	r := &Report{}
	for column, us := range map[string]float64{columnOverlay: 100, columnPreloaded: 60, columnSupervised: 500, columnSupervisedC: 95, columnSupervisedSecure: 300} {
		r.record("crr", metricPeerConnection, column, us)
	}
	notes := strings.Join(supervisedNotes(r), "\n")
	for _, want := range []string{"+35.0 us per connection", "+400.0 us per connection", "secure mode (supervised-secure - overlay): +200.0 us"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}
