package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/testenv"

	"github.com/slimnet/slim/lab"
)

// Lab names of the integration tests, distinct from any lab a person uses.
const (
	integrationLab = "benchit"
	cancelLab      = "benchitcancel"
	anchorsLab     = "benchitanchor"
)

func TestIntegrationBench(t *testing.T) {
	skipUnlessBenchCanRun(t)
	started := recordServers(t)
	prepareLab(t, integrationLab)
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	slim := buildSlim(t)
	// The connection-per-request tests run in TestIntegrationBenchAnchors.
	report, err := Run(ctx, Options{LabName: integrationLab, Duration: time.Second, Runs: 1, Progress: &progress, Slim: slim,
		Only: packetTests})
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, f := range report.Failures {
		t.Errorf("test %s failed: %v", f.Test, f.Err)
	}
	if len(report.Metrics) != 7 {
		t.Errorf("%d metrics, want 7", len(report.Metrics))
	}
	if len(report.Scenarios) != 3 || report.Scenarios[2].Name != "slim" {
		t.Errorf("scenarios %v, want host, overlay and slim", report.Scenarios)
	}
	for _, m := range report.Metrics {
		for _, sc := range report.Scenarios {
			if v, ok := m.Median(sc.Name); !ok || v <= 0 {
				t.Errorf("%s in %s: %v (measured: %v), want a positive value", m.Title(), sc.Name, v, ok)
			}
		}
	}
	var table bytes.Buffer
	if err := WriteTable(&table, report); err != nil {
		t.Fatal(err)
	}
	t.Logf("results:\n%s", table.String())
	checkLabGone(t, integrationLab)
	checkServersGone(t, started(), len(packetTests)*len(report.Scenarios))
}

// packetTests are the tests TestIntegrationBench runs.
var packetTests = []string{"iperf3", "tcp_rr", "tcp_crr", "nginx", "memcached"}

// TestIntegrationBenchAnchors is a short run of the connection-per-request
// tests in every column: host, overlay, the routed anchors (netkit where
// the kernel has it, a note where not) and slim, whose ratios to the
// anchors the second table shows.
func TestIntegrationBenchAnchors(t *testing.T) {
	skipUnlessBenchCanRun(t)
	started := recordServers(t)
	prepareLab(t, anchorsLab)
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	report, err := Run(ctx, Options{LabName: anchorsLab, Duration: time.Second, Runs: 1, Progress: &progress,
		Slim: buildSlim(t), Routed: true, Only: []string{"nginx_close", "pgbench_connect"}})
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, f := range report.Failures {
		t.Errorf("test %s failed: %v", f.Test, f.Err)
	}
	var names []string
	for _, sc := range report.Scenarios {
		names = append(names, sc.Name)
	}
	want := "host overlay routed netkit slim"
	if hasNote(report, "no netkit column") {
		want = "host overlay routed slim"
	}
	if got := strings.Join(names, " "); got != want {
		t.Errorf("columns %q, want %q", got, want)
	}
	if len(report.Metrics) != 2 {
		t.Errorf("%d metrics, want 2", len(report.Metrics))
	}
	for _, m := range report.Metrics {
		for _, sc := range report.Scenarios {
			if v, ok := m.Median(sc.Name); !ok || v <= 0 {
				t.Errorf("%s in %s: %v (measured: %v), want a positive value", m.Title(), sc.Name, v, ok)
			}
		}
	}
	var table bytes.Buffer
	if err := WriteTable(&table, report); err != nil {
		t.Fatal(err)
	}
	t.Logf("results:\n%s", table.String())
	if !strings.Contains(table.String(), "slim/routed") {
		t.Errorf("no slim/routed comparison in the table")
	}
	checkLabGone(t, anchorsLab)
	checkServersGone(t, started(), 2*len(report.Scenarios))
}

func hasNote(r *Report, prefix string) bool {
	for _, note := range r.Notes {
		if strings.HasPrefix(note, prefix) {
			return true
		}
	}
	return false
}

// buildSlim builds the slim binary, whose routers and `slim exec` the slim
// column uses.
func buildSlim(t *testing.T) string {
	t.Helper()
	bin := t.TempDir() + "/slim"
	cmd := exec.Command("go", "build", "-o", bin, "github.com/slimnet/slim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building slim: %v\n%s", err, out)
	}
	return bin
}

// TestIntegrationBenchCancel cancels a bench in the middle of a sample, as
// Ctrl-C does, and checks that it stops at once and cleans up.
func TestIntegrationBenchCancel(t *testing.T) {
	skipUnlessBenchCanRun(t)
	started := recordServers(t)
	prepareLab(t, cancelLab)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(3*time.Second, cancel) // lab up takes about a second
	begin := time.Now()
	_, err := Run(ctx, Options{LabName: cancelLab, Duration: 20 * time.Second, Runs: 1, Only: []string{"iperf3"}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	if took := time.Since(begin); took > 15*time.Second {
		t.Errorf("Run took %v to stop after cancellation", took)
	}
	checkLabGone(t, cancelLab)
	if pids := started(); len(pids) == 0 {
		t.Error("no server was started before the cancellation: the test cancels too early")
	} else {
		checkServersGone(t, pids, 0)
	}
}

func skipUnlessBenchCanRun(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
	for _, test := range tests {
		for _, tool := range test.Tools {
			if _, err := lookTool(tool); err != nil {
				testenv.Require(t, false, fmt.Sprintf("integration test: %v (make deps installs it)", err))
			}
		}
	}
}

// recordServers makes the package report every server it starts; the
// function it returns lists their process IDs so far.
func recordServers(t *testing.T) func() []int {
	var mu sync.Mutex
	var pids []int
	previous := serverStarted
	serverStarted = func(pid int) {
		mu.Lock()
		defer mu.Unlock()
		pids = append(pids, pid)
	}
	t.Cleanup(func() { serverStarted = previous })
	return func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), pids...)
	}
}

// prepareLab removes what a crashed earlier run may have left of the lab,
// and makes sure it is removed at the end whatever happens.
func prepareLab(t *testing.T, name string) {
	t.Helper()
	if err := lab.Down(name); err != nil {
		t.Fatalf("removing leftovers of lab %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := lab.Down(name); err != nil {
			t.Errorf("cleaning up lab %s: %v", name, err)
		}
	})
}

func checkLabGone(t *testing.T, name string) {
	t.Helper()
	var namespaces []string
	if _, err := exec.LookPath("ip"); err == nil {
		out, err := exec.Command("ip", "netns", "list").Output()
		if err != nil {
			t.Fatalf("ip netns list: %v", err)
		}
		namespaces = strings.Split(string(out), "\n")
	} else if namespaces, err = lab.Leftovers(name); err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		if strings.HasPrefix(ns, name+"-") {
			t.Errorf("namespace %q of lab %s is still there", ns, name)
		}
	}
	if _, err := lab.Load(name); !errors.Is(err, lab.ErrNotUp) {
		t.Errorf("lab %s: Load returned %v, want ErrNotUp", name, err)
	}
}

// checkServersGone checks that the servers started (want of them, unless
// want is 0) are gone and that no process is left in their process groups,
// such as an nginx worker or a netserver child.
func checkServersGone(t *testing.T, pids []int, want int) {
	t.Helper()
	if want > 0 && len(pids) != want {
		t.Errorf("%d servers started, want %d (one per sample)", len(pids), want)
	}
	groups := map[int]bool{}
	for _, pid := range pids {
		groups[pid] = true
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("server %d is still there", pid)
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 3 {
			continue
		}
		if pgrp, _ := strconv.Atoi(fields[2]); groups[pgrp] {
			t.Errorf("process %d (%s) of server group %d is still there", pid, bytes.TrimSpace(stat[:bytes.IndexByte(stat, ')')+1]), pgrp)
		}
	}
}
