package controlapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/slimnet/slim/control"
)

// serveMetrics serves Prometheus text metrics at /metrics on l until
// ctx is done.
func serveMetrics(ctx context.Context, l net.Listener, source control.Source, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		WriteMetrics(w, source.Snapshot())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second}
	shutDown := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shutDown)
		// A scrape in progress finishes, within a bound.
		c, cancel := context.WithTimeout(context.Background(), metricsShutdownTimeout)
		defer cancel()
		if srv.Shutdown(c) != nil {
			srv.Close()
		}
	})
	err := srv.Serve(l)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics endpoint stopped", "err", err)
	}
	if !stop() {
		<-shutDown // Serve returns as Shutdown starts: wait for its end
	}
}

// metricsShutdownTimeout bounds the wait for scrapes in progress at stop.
const metricsShutdownTimeout = 2 * time.Second

// WriteMetrics writes a snapshot's counters in the Prometheus text format.
func WriteMetrics(w io.Writer, s control.Snapshot) {
	metric := func(name, kind, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	}
	metric("slim_router_uptime_seconds", "gauge", "Seconds since the router started.")
	fmt.Fprintf(w, "slim_router_uptime_seconds %g\n", s.Router.Uptime.Seconds())

	if st := s.Router.Store; st != nil {
		writeStoreMetrics(w, metric, *st)
	}

	metric("slim_peer_connected", "gauge", "1 if the directory push connection to the peer router is up.")
	for _, p := range s.Peers {
		fmt.Fprintf(w, "slim_peer_connected{peer=%q} %d\n", p.Host.String(), boolInt(p.Connected))
	}

	type totals struct{ conns, listeners, in, out int64 }
	byContainer := map[string]*totals{}
	for _, c := range s.Containers {
		byContainer[c.Name] = &totals{listeners: int64(c.Listeners)}
	}
	for _, c := range s.Connections {
		t := byContainer[c.Container]
		if t == nil {
			t = &totals{}
			byContainer[c.Container] = t
		}
		t.conns++
		t.in += int64(c.BytesIn)
		t.out += int64(c.BytesOut)
	}
	names := make([]string, 0, len(byContainer))
	for n := range byContainer {
		names = append(names, n)
	}
	sort.Strings(names)
	metric("slim_accelerated_connections", "gauge", "Established accelerated connections by container.")
	for _, n := range names {
		fmt.Fprintf(w, "slim_accelerated_connections{container=%q} %d\n", n, byContainer[n].conns)
	}
	metric("slim_accelerated_listeners", "gauge", "Accelerated listeners by container.")
	for _, n := range names {
		fmt.Fprintf(w, "slim_accelerated_listeners{container=%q} %d\n", n, byContainer[n].listeners)
	}
	metric("slim_connection_bytes", "gauge", "Bytes of the open accelerated connections by container and direction (tcp_info).")
	for _, n := range names {
		fmt.Fprintf(w, "slim_connection_bytes{container=%q,direction=\"in\"} %d\n", n, byContainer[n].in)
		fmt.Fprintf(w, "slim_connection_bytes{container=%q,direction=\"out\"} %d\n", n, byContainer[n].out)
	}

	metric("slim_pool_sockets", "gauge", "Host sockets handed to the container (POOL) that still exist.")
	for _, c := range s.Containers {
		fmt.Fprintf(w, "slim_pool_sockets{container=%q} %d\n", c.Name, c.PoolSockets)
	}
	metric("slim_pool_quota", "gauge", "The most host sockets from POOL a container may hold.")
	for _, c := range s.Containers {
		fmt.Fprintf(w, "slim_pool_quota{container=%q} %d\n", c.Name, c.PoolQuota)
	}

	metric("slim_shim_reports_total", "counter", "STATS messages received from shims.")
	fmt.Fprintf(w, "slim_shim_reports_total %d\n", s.Shims.Reports)
	metric("slim_fallbacks_total", "counter", "Connects that shims sent over the overlay, by reason.")
	reasons := make([]string, 0, len(s.Shims.Fallbacks))
	for r := range s.Shims.Fallbacks {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "slim_fallbacks_total{reason=%q} %d\n", r, s.Shims.Fallbacks[r])
	}
	metric("slim_setup_seconds", "histogram", "Accelerated connect setup times reported by shims.")
	var cumulative uint64
	for i, n := range s.Shims.SetupBuckets {
		cumulative += n
		le := "+Inf"
		if i < len(s.Shims.SetupBuckets)-1 {
			le = strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.6f", float64(uint64(1)<<i)/1e6), "0"), ".")
		}
		fmt.Fprintf(w, "slim_setup_seconds_bucket{le=%q} %d\n", le, cumulative)
	}
	if len(s.Shims.SetupBuckets) == 0 {
		fmt.Fprintf(w, "slim_setup_seconds_bucket{le=\"+Inf\"} 0\n")
	}
	fmt.Fprintf(w, "slim_setup_seconds_count %d\n", cumulative)

	if s.Router.Secure != nil {
		metric("slim_secure_events_total", "counter", "Secure mode's decisions in the kernel, by event.")
		events := make([]string, 0, len(*s.Router.Secure))
		for e := range *s.Router.Secure {
			events = append(events, e)
		}
		sort.Strings(events)
		for _, e := range events {
			fmt.Fprintf(w, "slim_secure_events_total{event=%q} %d\n", e, (*s.Router.Secure)[e])
		}
	}
	metric("slim_policy_rule_hits_total", "counter", "Connections each policy rule matched.")
	for i, p := range s.Policy {
		fmt.Fprintf(w, "slim_policy_rule_hits_total{index=\"%d\",rule=%q} %d\n", i, p.Rule, p.Hits)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
