package storescale

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slimnet/slim/internal/etcdrun"
)

// counters are etcd's own figures, summed over the members where each
// member counts its own share (events sent to its watchers) and taken
// from the first member where every member counts the same (puts).
type counters struct {
	Puts      float64 // writes applied
	Txns      float64
	Events    float64 // watch events sent to watchers
	Watchers  float64
	Renewals  float64 // lease keep-alives
	DBBytes   float64
	KeysTotal float64
}

// metric names of etcd 3.4 (some have a stable name and a debugging one).
var metricNames = map[string]func(*counters, float64, bool){
	"etcd_mvcc_put_total":                func(c *counters, v float64, first bool) { setFirst(&c.Puts, v, first) },
	"etcd_mvcc_txn_total":                func(c *counters, v float64, first bool) { setFirst(&c.Txns, v, first) },
	"etcd_debugging_mvcc_events_total":   func(c *counters, v float64, _ bool) { c.Events += v },
	"etcd_debugging_mvcc_watcher_total":  func(c *counters, v float64, _ bool) { c.Watchers += v },
	"etcd_debugging_lease_renewed_total": func(c *counters, v float64, _ bool) { c.Renewals += v },
	"etcd_mvcc_db_total_size_in_bytes":   func(c *counters, v float64, first bool) { setFirst(&c.DBBytes, v, first) },
	"etcd_debugging_mvcc_keys_total":     func(c *counters, v float64, first bool) { setFirst(&c.KeysTotal, v, first) },
}

func setFirst(dst *float64, v float64, first bool) {
	if first {
		*dst = v
	}
}

// scrape reads every member's /metrics (over mutual TLS, from the
// scratch namespace).
func scrape(ctx context.Context, s *etcdrun.Scratch) (counters, error) {
	tlsConfig, err := s.TLS("root")
	if err != nil {
		return counters{}, err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsConfig,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return s.Dial(ctx, addr)
		},
	}}
	defer client.CloseIdleConnections()
	var c counters
	for i, m := range s.Cluster.Members {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL()+"/metrics", nil)
		if err != nil {
			return c, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return c, fmt.Errorf("etcd metrics of %s: %w", m.Name, err)
		}
		err = parseMetrics(resp.Body, &c, i == 0)
		resp.Body.Close()
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

func parseMetrics(r io.Reader, c *counters, first bool) error {
	scan := bufio.NewScanner(r)
	scan.Buffer(make([]byte, 64*1024), 1024*1024)
	for scan.Scan() {
		line := scan.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		set, known := metricNames[name]
		if !known {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err == nil {
			set(c, v, first)
		}
	}
	return scan.Err()
}

// minus is the counters' change since before (gauges are taken as they
// are now).
func (c counters) minus(before counters) counters {
	return counters{
		Puts: c.Puts - before.Puts, Txns: c.Txns - before.Txns, Events: c.Events - before.Events,
		Renewals: c.Renewals - before.Renewals, Watchers: c.Watchers, DBBytes: c.DBBytes, KeysTotal: c.KeysTotal,
	}
}
