package bench

// Metric is one row of the results.
type Metric struct {
	ID    string // stable key, as in the JSON document
	Label string // what is measured
	Unit  string
}

// Title is the metric as the table shows it: label and unit.
func (m Metric) Title() string { return m.Label + " " + m.Unit }

// The metrics the tests produce.
var (
	metricThroughput = Metric{ID: "iperf3_throughput", Label: "iperf3 throughput", Unit: "Gb/s"}
	metricCPUPerGB   = Metric{ID: "cpu_per_gb", Label: "CPU", Unit: "s/GB"}
	metricRRRate     = Metric{ID: "tcp_rr_rate", Label: "TCP_RR", Unit: "trans/s"}
	metricRRLatency  = Metric{ID: "tcp_rr_latency", Label: "TCP_RR mean latency", Unit: "us"}
	metricCRRRate    = Metric{ID: "tcp_crr_rate", Label: "TCP_CRR", Unit: "conn/s"}
	metricNginx      = Metric{ID: "nginx_requests", Label: "nginx+wrk", Unit: "req/s"}
	metricMemcached  = Metric{ID: "memcached_ops", Label: "memcached+memcaslap", Unit: "ops/s"}
	// A new connection per request.
	metricNginxClose     = Metric{ID: "nginx_close_requests", Label: "nginx+wrk Connection: close", Unit: "req/s"}
	metricPgbenchConnect = Metric{ID: "pgbench_connect_tps", Label: "postgres+pgbench -C", Unit: "tx/s"}
)
