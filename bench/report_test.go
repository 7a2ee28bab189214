package bench

import "testing"

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		values []float64
		want   float64
		ok     bool
	}{
		{nil, 0, false},
		{[]float64{3}, 3, true},
		{[]float64{3, 1, 2}, 2, true},
		{[]float64{4, 1, 3, 2}, 2.5, true},
	} {
		got, ok := median(tc.values)
		if got != tc.want || ok != tc.ok {
			t.Errorf("median(%v) = %v, %v; want %v, %v", tc.values, got, ok, tc.want, tc.ok)
		}
	}
	values := []float64{3, 1, 2}
	median(values)
	if values[0] != 3 || values[1] != 1 {
		t.Errorf("median reordered its input: %v", values)
	}
}

func TestRatio(t *testing.T) {
	r := sampleReport()
	rate := r.metric("tcp_rr", metricRRRate)
	if got, ok := r.Ratio(rate, "overlay"); !ok || !near(got, 33990.0/44724) {
		t.Errorf("ratio %v, %v", got, ok)
	}
	if _, ok := r.Ratio(r.metric("nginx", metricNginx), "overlay"); ok {
		t.Error("ratio of a metric without samples")
	}
	r.record("memcached", metricMemcached, "overlay", 5)
	if _, ok := r.Ratio(r.metric("memcached", metricMemcached), "overlay"); ok {
		t.Error("ratio without a baseline sample")
	}
}
