package bench

import (
	"context"
	"fmt"
	"strings"
)

// test is one benchmark: a server and a client, measuring one or more
// metrics.
type test struct {
	ID      string   // what --only selects it by
	Title   string   // how progress lines name it
	Tools   []string // executables it needs, servers and clients
	Metrics []Metric
	// measure takes one sample in a scenario and returns a value for
	// each of the test's metrics, by metric ID.
	measure func(ctx context.Context, s *sample) (map[string]float64, error)
	// prepare, if set, readies what its samples share, once per bench
	// (before its first sample).
	prepare preparation
}

// tests are the rows of the bench, in the order they run.
var tests = []test{
	{
		ID:      "iperf3",
		Title:   "iperf3",
		Tools:   []string{"iperf3"},
		Metrics: []Metric{metricThroughput, metricCPUPerGB},
		measure: measureIperf3,
	},
	{
		ID:      "tcp_rr",
		Title:   "TCP_RR",
		Tools:   []string{"netserver", "netperf"},
		Metrics: []Metric{metricRRRate, metricRRLatency},
		measure: measureTCPRR,
	},
	{
		ID:      "tcp_crr",
		Title:   "TCP_CRR",
		Tools:   []string{"netserver", "netperf"},
		Metrics: []Metric{metricCRRRate},
		measure: measureTCPCRR,
	},
	{
		ID:      "nginx",
		Title:   "nginx+wrk",
		Tools:   []string{"nginx", "wrk"},
		Metrics: []Metric{metricNginx},
		measure: measureNginx,
	},
	{
		ID:      "memcached",
		Title:   "memcached+memcaslap",
		Tools:   []string{"memcached", "memcaslap"},
		Metrics: []Metric{metricMemcached},
		measure: measureMemcached,
	},
	// Connection per request: setup cost in real applications.
	{
		ID:      "nginx_close",
		Title:   "nginx+wrk, Connection: close",
		Tools:   []string{"nginx", "wrk"},
		Metrics: []Metric{metricNginxClose},
		measure: measureNginxClose,
	},
	{
		ID:      "pgbench_connect",
		Title:   "postgres+pgbench -C",
		Tools:   []string{pgTool("postgres"), pgTool("initdb"), pgTool("pgbench"), "setpriv"},
		Metrics: []Metric{metricPgbenchConnect},
		measure: measurePgbenchConnect,
		prepare: preparePostgres,
	},
}

// TestIDs lists the IDs of the tests, in the order they run.
func TestIDs() []string {
	ids := make([]string, len(tests))
	for i, t := range tests {
		ids[i] = t.ID
	}
	return ids
}

// selectTests returns the tests with the given IDs, in their usual order;
// all of them if ids is empty.
func selectTests(ids []string) ([]test, error) {
	if len(ids) == 0 {
		return tests, nil
	}
	wanted := map[string]bool{}
	for _, id := range ids {
		if !isTestID(id) {
			return nil, fmt.Errorf("unknown test %q (tests: %s)", id, strings.Join(TestIDs(), ", "))
		}
		wanted[id] = true
	}
	var selected []test
	for _, t := range tests {
		if wanted[t.ID] {
			selected = append(selected, t)
		}
	}
	return selected, nil
}

func isTestID(id string) bool {
	for _, t := range tests {
		if t.ID == id {
			return true
		}
	}
	return false
}
