package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// churnThreads is how many threads testdata/c/churn connects with.
const churnThreads = 8

// TestIntegrationShimBackoff: a multi-threaded client whose router stalls
// for a moment or restarts is accelerated again soon after, not only when
// the longest back-off has run out. Once, each thread that saw the same
// stall doubled the shim's pause: a 0.8 s stall with 8 threads pushed it
// to 30 s; and after a restart each thread's old router connection failed
// in turn, each failure a new pause.
func TestIntegrationShimBackoff(t *testing.T) {
	l := newLab(t, "bko")
	t.Run("stall", func(t *testing.T) {
		l.t = t
		routerStallCostsLittle(t, l, 7600)
	})
	t.Run("restart", func(t *testing.T) {
		l.t = t
		routerRestartCostsNothing(t, l, 7610)
	})
}

// routerStallCostsLittle stops h2's router for 0.8 s while churn runs in
// h2-c1 and checks how soon after the router resumes connections are
// accelerated again: the shim pauses 1 s after the first failure of the
// stall, so within a few seconds (30 s when every thread's failure counted).
func routerStallCostsLittle(t *testing.T, l *testLab, port int) {
	client := startChurn(t, l, port, "")
	before := client.waitForTick(func(k churnTick) bool { return k.acc >= 200 }, 20*time.Second)
	r := l.mustFindRouter("h2")
	if err := syscall.Kill(r.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(r.pid, syscall.SIGCONT) })
	time.Sleep(800 * time.Millisecond)
	if err := syscall.Kill(r.pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	at := client.lastTick()
	after, ok := client.tickWithin(func(k churnTick) bool { return k.acc >= at.acc+100 }, 20*time.Second)
	elapsed := time.Since(resumed)
	t.Logf("before the stall %+v, at its end %+v, accelerated again %+v after %v", before, at, after, elapsed)
	if at.ovl == before.ovl {
		t.Fatalf("no connection fell back during the stall: the test proves nothing")
	}
	if limit := 8 * time.Second; !ok || elapsed > limit {
		t.Errorf("connections were not accelerated again within %v of the router's recovery (took %v, found %v)", limit, elapsed, ok)
	}
}

// routerRestartCostsNothing pauses churn, kills and restarts h2's router,
// lets churn go on and checks that not one connection went over the
// overlay and the shim printed no warning: the router connections the
// threads kept from before the restart are replaced, not counted as
// router failures.
func routerRestartCostsNothing(t *testing.T, l *testLab, port int) {
	pause := filepath.Join(t.TempDir(), "pause")
	client := startChurn(t, l, port, pause)
	client.waitForTick(func(k churnTick) bool { return k.acc >= 200 }, 20*time.Second)
	touch(t, pause)
	time.Sleep(500 * time.Millisecond) // connects under way finish
	served := l.routerStarts("h2")
	l.restartRouter("h2", l.killRouter("h2"))
	// The restarted router's first directory (without h1's listeners) may
	// come after its socket serves; h1's listeners come with h1's next
	// push: h1 notices the restart only when a write fails, which can take
	// two of its 5 s resyncs.
	l.waitForRouterStarts("h2", served+1, 10*time.Second)
	l.waitForDirectory("h2", l.containerAddr("h1-c1"), port, 30*time.Second)
	paused := client.lastTick()
	if err := os.Remove(pause); err != nil {
		t.Fatal(err)
	}
	after := client.waitForTick(func(k churnTick) bool { return k.acc >= paused.acc+200 }, 20*time.Second)
	t.Logf("paused %+v, after the restart %+v", paused, after)
	if after.ovl != paused.ovl || after.err != paused.err {
		t.Errorf("after the router restarted, %d connections went over the overlay and %d failed", after.ovl-paused.ovl, after.err-paused.err)
	}
	if warnings := linesWithPrefix(client.output(), "slim:"); len(warnings) > 0 {
		t.Errorf("the client printed slim warnings:\n%s", strings.Join(warnings, "\n"))
	}
}

// churnProgram is testdata/c/churn's client.
type churnProgram struct{ *program }

// startChurn runs churn's server in h1-c1 and its client in h2-c1, both
// under slim exec, the client for 90 s (the test stops it earlier).
func startChurn(t *testing.T, l *testLab, port int, pauseFile string) churnProgram {
	addr := l.containerAddr("h1-c1")
	server := l.start("h1-c1", true, binPath("churn"), "server", addr, fmt.Sprint(port))
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", addr, port, 10*time.Second)
	argv := []string{binPath("churn"), "client", addr, fmt.Sprint(port), fmt.Sprint(churnThreads), "90"}
	if pauseFile != "" {
		argv = append(argv, pauseFile)
	}
	return churnProgram{l.start("h2-c1", true, argv...)}
}

// churnTick is one of churn's running totals.
type churnTick struct{ acc, ovl, err int }

var tickLine = regexp.MustCompile(`(?m)^tick ms=\d+ acc=(\d+) ovl=(\d+) err=(\d+)$`)

func (p churnProgram) lastTick() churnTick {
	m := tickLine.FindAllStringSubmatch(p.output(), -1)
	if len(m) == 0 {
		return churnTick{}
	}
	last := m[len(m)-1]
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return churnTick{acc: n(last[1]), ovl: n(last[2]), err: n(last[3])}
}

// tickWithin waits until the latest totals satisfy cond.
func (p churnProgram) tickWithin(cond func(churnTick) bool, timeout time.Duration) (churnTick, bool) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		if k := p.lastTick(); cond(k) {
			return k, true
		}
		select {
		case <-p.exited:
			p.t.Fatalf("%s exited (%v):\n%s", p.name, p.err, tail(p.output(), 40))
		case <-time.After(20 * time.Millisecond):
		}
	}
	return p.lastTick(), false
}

func (p churnProgram) waitForTick(cond func(churnTick) bool, timeout time.Duration) churnTick {
	p.t.Helper()
	k, ok := p.tickWithin(cond, timeout)
	if !ok {
		p.t.Fatalf("%s: totals %+v after %v:\n%s", p.name, k, timeout, tail(p.output(), 40))
	}
	return k
}

// routerStarts counts the "router serving" lines in host's router log: a
// router logs one after it published its first directory.
func (l *testLab) routerStarts(host string) int {
	log, _ := os.ReadFile(filepath.Join(l.RouterDir(host), "router.log"))
	return strings.Count(string(log), `msg="router serving"`)
}

func (l *testLab) waitForRouterStarts(host string, n int, timeout time.Duration) {
	l.t.Helper()
	for deadline := time.Now().Add(timeout); l.routerStarts(host) < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			l.t.Fatalf("the router of %s logged %d starts after %v, want %d", host, l.routerStarts(host), timeout, n)
		}
	}
}
