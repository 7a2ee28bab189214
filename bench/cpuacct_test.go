package bench

import (
	"math"
	"testing"
	"time"
)

func TestParseCgroupUsage(t *testing.T) {
	got, err := parseCgroupUsage([]byte("usage_usec 442573784\nuser_usec 231478069\nsystem_usec 211095715\nnice_usec 0\n"))
	if err != nil || got != 442573784*time.Microsecond {
		t.Errorf("usage %v, %v", got, err)
	}
	for _, bad := range []string{"", "user_usec 5\n", "usage_usec -3\n", "usage_usec many\n"} {
		if _, err := parseCgroupUsage([]byte(bad)); err == nil {
			t.Errorf("parseCgroupUsage(%q) accepted", bad)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	hybrid := "9:name=systemd:/\n4:memory:/process_api/a52a\n0::/slim/lab/containers/h1-c2\n"
	if got, err := parseProcCgroup([]byte(hybrid)); err != nil || got != "/slim/lab/containers/h1-c2" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := parseProcCgroup([]byte("4:memory:/x\n1:cpu:/\n")); err == nil {
		t.Error("a process in no cgroup v2 was given one")
	}
}

func TestParseSoftirqTicks(t *testing.T) {
	stat := "cpu  24897 0 15662 110197 467 0 5985 26 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1 2\n"
	if got, err := parseSoftirqTicks([]byte(stat)); err != nil || got != 5985 {
		t.Errorf("softirq %d, %v; want 5985", got, err)
	}
	for _, bad := range []string{"cpu0 1 2 3 4 5 6 7\n", "cpu 1 2 3\n", "cpu 1 2 3 4 5 6 x 8\n"} {
		if _, err := parseSoftirqTicks([]byte(bad)); err == nil {
			t.Errorf("parseSoftirqTicks(%q) accepted", bad)
		}
	}
}

func TestParseTaskTicks(t *testing.T) {
	// A command name with a space and a parenthesis, as a program may
	// choose; utime 1234 and stime 56 are fields 14 and 15.
	stat := "15 (ksoftirqd/1) S 2 0 0 0 -1 69238848 0 0 0 0 1234 56 0 0 20 0 1 0 12 0 0\n"
	if got, err := parseTaskTicks([]byte(stat)); err != nil || got != 1290 {
		t.Errorf("ticks %d, %v; want 1290", got, err)
	}
	odd := "77 (a) b (c) R 1 77 77 0 -1 4194304 100 0 0 0 7 8 0 0 20 0 1 0 5 0 0\n"
	if got, err := parseTaskTicks([]byte(odd)); err != nil || got != 15 {
		t.Errorf("ticks %d, %v; want 15", got, err)
	}
	if _, err := parseTaskTicks([]byte("77 (a) R 1 2 3\n")); err == nil {
		t.Error("a short stat line was accepted")
	}
}

func TestPerOp(t *testing.T) {
	before := cpuCounters{client: time.Second, server: 2 * time.Second, softirq: 100, ksoftirqd: 7}
	after := cpuCounters{client: 1500 * time.Millisecond, server: 2250 * time.Millisecond, softirq: 110, ksoftirqd: 7}
	got, err := perOp(before, after, 50000)
	if err != nil {
		t.Fatal(err)
	}
	// 0.5 s over 50,000 ops is 10 µs; 10 ticks of 10 ms is 2 µs each.
	want := cpuPerOp{Client: 10, Server: 5, Softirq: 2, Ksoftirqd: 0}
	if math.Abs(got.Client-want.Client)+math.Abs(got.Server-want.Server)+math.Abs(got.Softirq-want.Softirq)+got.Ksoftirqd > 1e-9 {
		t.Errorf("perOp = %+v, want %+v", got, want)
	}
	if _, err := perOp(before, after, 0); err == nil {
		t.Error("no operations: no error")
	}
	if _, err := perOp(after, before, 10); err == nil {
		t.Error("counters going backwards (a process changed cgroups): no error")
	}
}

func TestKernelConfigValue(t *testing.T) {
	config := "# CONFIG_IRQ_TIME_ACCOUNTING is not set\nCONFIG_TICK_CPU_ACCOUNTING=y\nCONFIG_HZ=250\n"
	if v := kernelConfigValue([]byte(config), "CONFIG_IRQ_TIME_ACCOUNTING"); v != "" {
		t.Errorf("an option that is not set has value %q", v)
	}
	if v := kernelConfigValue([]byte(config), "CONFIG_HZ"); v != "250" {
		t.Errorf("CONFIG_HZ = %q", v)
	}
}
