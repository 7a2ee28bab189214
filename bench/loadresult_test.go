package bench

import (
	"strings"
	"testing"
)

func TestParseLoadResult(t *testing.T) {
	out := `slim-bench: measure start
slim-bench: measure end
{"proto":"memcached","conns":16,"rate":5000.000,"warmup_s":1.000,"duration_s":1.000,"scheduled":5000,"completed":4990,"unanswered":10,"sets":490,"misses":0,"achieved":4991.000,"latency_us":{"p50":55.040,"p90":73.216,"p99":333.824,"p999":1089.536,"max":1423.872,"mean":64.259},"send_lag_us":{"p50":38.144,"p99":109.056},"service_us":{"p50":20.5,"p99":90}}
`
	r, err := parseLoadResult([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := loadResult{Completed: 4990, Achieved: 4991, Unanswered: 10, P50: 55.040, P90: 73.216, P99: 333.824,
		P999: 1089.536, Max: 1423.872, Mean: 64.259, LagP50: 38.144, ServiceP50: 20.5}
	if r != want {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
	for name, bad := range map[string]string{
		"no report":     "slim-bench: measure start\n",
		"not JSON":      "{nope\n",
		"no count":      `{"latency_us":{"p50":1,"p90":1,"p99":1,"p999":1,"max":1}}`,
		"nothing done":  `{"completed":0,"latency_us":{}}`,
		"out of order":  `{"completed":5,"latency_us":{"p50":9,"p90":1,"p99":1,"p999":1,"max":9}}`,
		"above the max": `{"completed":5,"latency_us":{"p50":1,"p90":1,"p99":1,"p999":1,"max":1},"service_us":{"p50":3}}`,
	} {
		if _, err := parseLoadResult([]byte(bad)); err == nil {
			t.Errorf("%s: %q accepted", name, bad)
		}
	}
}

func TestLineWriter(t *testing.T) {
	var lines []string
	w := newLineWriter(func(line string) { lines = append(lines, line) })
	for _, part := range []string{"slim-bench: mea", "sure start\r\n", "a\nb\n", "partial"} {
		w.Write([]byte(part))
	}
	if got := strings.Join(lines, "|"); got != "slim-bench: measure start|a|b" {
		t.Errorf("lines %q", got)
	}
	long := strings.Repeat("x", maxLine+10)
	lines = nil
	w = newLineWriter(func(line string) { lines = append(lines, line) })
	w.Write([]byte(long))
	if len(lines) != 1 || len(lines[0]) != maxLine+10 {
		t.Errorf("a line longer than %d bytes was not cut: %d lines", maxLine, len(lines))
	}
}
