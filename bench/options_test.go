package bench

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	good := Options{LabName: "bench", Duration: 5 * time.Second, Runs: 3}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"bad lab name", func(o *Options) { o.LabName = "Bad-Name" }, "lab name"},
		{"fraction of a second", func(o *Options) { o.Duration = 1500 * time.Millisecond }, "whole number of seconds"},
		{"zero duration", func(o *Options) { o.Duration = 0 }, "whole number of seconds"},
		{"too long", func(o *Options) { o.Duration = time.Hour }, "whole number of seconds"},
		{"no runs", func(o *Options) { o.Runs = 0 }, "runs"},
		{"unknown test", func(o *Options) { o.Only = []string{"iperf3", "ping"} }, `unknown test "ping"`},
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

func TestParseOnlyAndSelect(t *testing.T) {
	ids := ParseOnly(" Memcached, ,iperf3 ")
	if !slices.Equal(ids, []string{"memcached", "iperf3"}) {
		t.Fatalf("ParseOnly: %q", ids)
	}
	selected, err := selectTests(ids)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, test := range selected {
		got = append(got, test.ID)
	}
	if !slices.Equal(got, []string{"iperf3", "memcached"}) {
		t.Errorf("selected %q, want the tests in their usual order", got)
	}
	all, _ := selectTests(nil)
	if len(all) != len(TestIDs()) {
		t.Errorf("no --only selected %d tests, want all %d", len(all), len(TestIDs()))
	}
}

func TestEveryTestIsComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, test := range tests {
		if test.ID == "" || test.Title == "" || len(test.Tools) == 0 || len(test.Metrics) == 0 || test.measure == nil {
			t.Errorf("test %+v is incomplete", test)
		}
		for _, m := range test.Metrics {
			if seen[m.ID] {
				t.Errorf("metric %s is measured twice", m.ID)
			}
			seen[m.ID] = true
		}
	}
}
