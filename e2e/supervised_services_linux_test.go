package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"
)

// Go services of Debian's packages (Go 1.19 builds: their listeners wake
// by the supervisor's doorbell) under slim exec, with their defaults, across
// the lab's two hosts: Prometheus scraping prometheus-node-exporter, Caddy as
// a reverse proxy in front of a backend on the other host.

// TestIntegrationSupervisedServices: each service does its job, its
// cross-host connections are host connections (nothing of them on the
// VXLAN device), clients without Slim still reach it, slim exec says
// nothing, and stopping it leaves no supervisor, directory entry or host
// listener behind.
func TestIntegrationSupervisedServices(t *testing.T) {
	testenv.Tools(t, "prometheus", "prometheus-node-exporter", "caddy", "curl", "wrk", "python3")
	l := newLab(t, "supg")
	t.Run("prometheus", func(t *testing.T) {
		l.t = t
		runPrometheus(t, l)
	})
	t.Run("caddy", func(t *testing.T) {
		l.t = t
		runCaddy(t, l)
	})
	t.Run("small backlog", func(t *testing.T) {
		l.t = t
		runSmallBacklog(t, l)
	})
}

// prometheusConfig is what a user writes: Prometheus itself over loopback
// and a node exporter by its overlay address, scraped every second.
const prometheusConfig = `global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['localhost:9090']
  - job_name: node
    static_configs:
      - targets: ['%s']
`

// maxScrapeStrayBytes bounds what may cross VXLAN during three scrapes of
// the node exporter: less than one scrape (some 9 KB gzipped).
const maxScrapeStrayBytes = 8 << 10

// runPrometheus: node-exporter in h2-c1, Prometheus in h1-c1, both under
// slim exec on their default ports.
func runPrometheus(t *testing.T, l *testLab) {
	exporterAddr := l.containerAddr("h2-c1") + ":9100"
	exporter := l.start("h2-c1", true, "prometheus-node-exporter")
	exporter.waitFor("Listening on", 10*time.Second)
	l.waitForDirectory("h1", l.containerAddr("h2-c1"), 9100, 5*time.Second)
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(prometheusConfig, exporterAddr)), 0o644); err != nil {
		t.Fatal(err)
	}
	prom := l.start("h1-c1", true, "prometheus", "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"))
	prom.waitFor("Server is ready to receive web requests", 30*time.Second)
	promURL := "http://" + l.containerAddr("h1-c1") + ":9090"
	waitForTargetsUp(t, l, promURL, exporterAddr, "localhost:9090")

	exporterHost := l.hostListenerOf("h1", l.containerAddr("h2-c1"), 9100)
	before := l.vxlanBytes("h1")
	time.Sleep(3 * time.Second) // three scrapes
	crossed := l.vxlanBytes("h1") - before
	conns := l.hostConnections("h1")
	t.Logf("3 s of scrapes: %d bytes over VXLAN; host connections in h1: %v", crossed, conns)
	if !hasConnectionTo(conns, exporterHost) {
		t.Errorf("no host connection from h1 to the node exporter's host listener %s: the scrapes are not accelerated", exporterHost)
	}
	if crossed > maxScrapeStrayBytes {
		t.Errorf("%d bytes crossed the VXLAN device during three scrapes", crossed)
	}
	samples := queryPrometheus(t, l, promURL, `node_cpu_seconds_total{instance="`+exporterAddr+`"}`)
	if samples == 0 {
		t.Errorf("Prometheus has no node_cpu_seconds_total samples of %s", exporterAddr)
	}
	for _, node := range []string{"h2-c2", "h1-c2", "h1-c1"} {
		out, err := l.curl(node, false, promURL+"/-/ready")
		wantOutput(t, "Prometheus from "+node+" without Slim", out, err, "Prometheus Server is Ready")
	}
	for _, node := range []string{"h1-c2", "h2-c2", "h2-c1"} {
		out, err := l.curl(node, false, "http://"+exporterAddr+"/metrics")
		wantOutput(t, "the node exporter from "+node+" without Slim", out, err, "node_cpu_seconds_total")
	}
	l.stopService(prom, "h1-c1", 9090, true)
	l.stopService(exporter, "h2-c1", 9100, true)
	if prom.err != nil || !strings.Contains(prom.output(), "See you next time") {
		t.Errorf("Prometheus did not stop cleanly on SIGTERM: %v\n%s", prom.err, tail(prom.output(), 10))
	}
	checkSupervised(t, prom)
	checkSupervised(t, exporter)
	// The node exporter's errors are its collectors' (no udev, no systemd
	// in a lab container), with or without Slim.
	if lines := errorLines(prom.output()); len(lines) > 0 {
		t.Errorf("Prometheus logged errors:\n%s", strings.Join(lines, "\n"))
	}
}

// promTargets is the part of /api/v1/targets a user looks at.
type promTargets struct {
	Data struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			Health    string            `json:"health"`
			LastError string            `json:"lastError"`
		} `json:"activeTargets"`
	} `json:"data"`
}

// waitForTargetsUp waits until Prometheus at promURL shows every instance
// as up (asked from its own container, without Slim).
func waitForTargetsUp(t *testing.T, l *testLab, promURL string, instances ...string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		out, err := l.curl("h1-c1", false, promURL+"/api/v1/targets")
		last = out
		var targets promTargets
		if err != nil || json.Unmarshal([]byte(out), &targets) != nil {
			continue
		}
		up := 0
		for _, target := range targets.Data.ActiveTargets {
			for _, instance := range instances {
				if target.Labels["instance"] == instance && target.Health == "up" {
					up++
				}
			}
		}
		if up == len(instances) {
			return
		}
	}
	t.Fatalf("Prometheus's targets %v are not all up after 20 s:\n%s", instances, last)
}

// queryPrometheus runs an instant query and returns how many series it
// found.
func queryPrometheus(t *testing.T, l *testLab, promURL, query string) int {
	t.Helper()
	out, err := l.curl("h2-c2", false, "-G", "--data-urlencode", "query="+query, promURL+"/api/v1/query")
	var answer struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err != nil || json.Unmarshal([]byte(out), &answer) != nil || answer.Status != "success" {
		t.Fatalf("query %s: %v\n%s", query, err, tail(out, 10))
	}
	return len(answer.Data.Result)
}

// backendBody is what the backend serves.
const backendBody = "hello from the backend behind caddy\n"

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkTrouble  = regexp.MustCompile(`(?m)^\s*(Non-2xx or 3xx responses|Socket errors):.*$`)
)

// runCaddy: Python's http.server in h2-c2 (the shim), Caddy in h1-c1 as
// its reverse proxy on Caddy's default HTTP port, clients in h2-c1 (curl
// and wrk under slim exec) and elsewhere without Slim.
func runCaddy(t *testing.T, l *testLab) {
	t.Setenv("XDG_DATA_HOME", t.TempDir()) // Caddy's storage, not root's home
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte(backendBody), 0o644); err != nil {
		t.Fatal(err)
	}
	backendAddr := l.containerAddr("h2-c2") + ":8000"
	backend := l.start("h2-c2", true, "python3", "-m", "http.server", "--directory", root)
	backend.waitFor("Serving HTTP", 10*time.Second)
	l.waitForDirectory("h1", l.containerAddr("h2-c2"), 8000, 5*time.Second)
	caddy := l.start("h1-c1", true, "caddy", "reverse-proxy", "--from", ":80", "--to", backendAddr)
	caddy.waitFor("Caddy proxying", 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), 80, 5*time.Second)
	front := "http://" + l.containerAddr("h1-c1") + "/"

	out, err := l.curl("h2-c1", true, front)
	if err != nil || out != backendBody {
		t.Fatalf("curl through caddy: %v, %q; want the backend's body", err, out)
	}
	caddyHost := l.hostListenerOf("h2", l.containerAddr("h1-c1"), 80)
	backendHost := l.hostListenerOf("h1", l.containerAddr("h2-c2"), 8000)
	before := l.vxlanBytes("h1")
	wrk := l.start("h2-c1", true, "wrk", "-t2", "-c50", "-d3s", front)
	time.Sleep(1500 * time.Millisecond)
	h1, h2 := l.hostConnections("h1"), l.hostConnections("h2")
	if err := wrk.wait(30 * time.Second); err != nil {
		t.Fatalf("wrk: %v\n%s", err, wrk.output())
	}
	crossed := l.vxlanBytes("h1") - before
	t.Logf("wrk through caddy, 50 connections, 3 s: %d bytes over VXLAN, %d and %d host connections in h1 and h2\n%s", crossed, len(h1), len(h2), wrk.output())
	checkLoad(t, wrk.output())
	if crossed > maxStrayOverlayBytes {
		t.Errorf("%d bytes crossed the VXLAN device under load through caddy", crossed)
	}
	if !hasConnectionTo(h1, backendHost) || !hasConnectionTo(h2, caddyHost) {
		t.Errorf("under load: caddy to the backend's host listener %s in h1: %v, clients to caddy's %s in h2: %v",
			backendHost, hasConnectionTo(h1, backendHost), caddyHost, hasConnectionTo(h2, caddyHost))
	}
	if want := l.containerAddr("h1-c1") + ` - - [`; !strings.Contains(backend.output(), want) {
		t.Errorf("the backend did not see caddy's overlay address (%q):\n%s", want, tail(backend.output(), 5))
	}
	for _, node := range []string{"h2-c2", "h1-c2", "h1-c1"} {
		out, err := l.curl(node, false, front)
		wantOutput(t, "caddy from "+node+" without Slim", out, err, backendBody)
	}
	l.stopService(caddy, "h1-c1", 80, true)
	l.stopService(backend, "h2-c2", 8000, false)
	if caddy.err != nil {
		t.Errorf("caddy did not stop cleanly on SIGTERM: %v\n%s", caddy.err, tail(caddy.output(), 10))
	}
	checkSupervised(t, caddy)
	checkSupervised(t, backend)
	// Requests caddy failed (a 502 when the backend resets it). wrk's
	// connections closed mid-request at its end are logged as errors of
	// the proxy handler, with or without Slim.
	if lines := linesWith(caddy.output(), `"logger":"http.log.error"`); len(lines) > 0 {
		t.Errorf("caddy failed %d requests:\n%s", len(lines), strings.Join(lines[:min(len(lines), 5)], "\n"))
	}
}

// checkLoad fails t unless wrk's output shows requests and no errors.
func checkLoad(t *testing.T, out string) {
	t.Helper()
	requests := 0
	if m := wrkRequests.FindStringSubmatch(out); m != nil {
		requests, _ = strconv.Atoi(m[1])
	}
	if requests == 0 {
		t.Errorf("wrk made no requests:\n%s", out)
	}
	if trouble := wrkTrouble.FindAllString(out, -1); len(trouble) > 0 {
		t.Errorf("wrk through caddy: %s", strings.Join(trouble, "; "))
	}
}

// smallBacklogServer listens with backlog 5, then again with 2 (a listen()
// that only changes the backlog), and accepts.
const smallBacklogServer = `import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("", 8300))
s.listen(5)
s.listen(2)
print("listening", flush=True)
while True:
    s.accept()[0].close()
`

// runSmallBacklog: a host listener's backlog is Slim's floor, not the
// app's, also after the app listened again (the shim's relisten).
func runSmallBacklog(t *testing.T, l *testLab) {
	addr := l.containerAddr("h2-c1")
	server := l.start("h2-c1", true, "python3", "-c", smallBacklogServer)
	server.waitFor("listening", 10*time.Second)
	l.waitForDirectory("h2", addr, 8300, 5*time.Second)
	want := min(4096, l.somaxconn("h2"))
	host := l.hostListenerOf("h2", addr, 8300)
	if got := l.listenerBacklog("h2", host); got != want {
		t.Errorf("host listener of an app that listened with backlog 5, then 2: backlog %d, want %d", got, want)
	}
	l.stopService(server, "h2-c1", 8300, false)
	checkSupervised(t, server)
}
