package bench

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// CPU accounting of a fixed-load sample. The client's and the server's
// processes each run in a cgroup v2 of their own; cpu.stat's usage_usec
// (present without the cpu controller) is their CPU time, user and system.
// Whether that includes the softirq work (packet processing) done while
// they run depends on the kernel: with CONFIG_IRQ_TIME_ACCOUNTING off,
// softirq time counts as the system time of the task it interrupted, so a
// sender pays for the receive path it runs inline (on veth, up to the
// peer's socket); with it on, softirq time is counted apart and charged
// to no cgroup. Work deferred to the ksoftirqd threads is never in these
// cgroups. So the samples also read, for the whole machine, the softirq
// time of /proc/stat and the CPU time of the ksoftirqd threads: reported
// apart, not added, since they overlap the cgroups' (and include whatever
// else the machine runs).

// cpuCounters are the CPU counters read at one instant.
type cpuCounters struct {
	client, server time.Duration // usage of the cgroups
	softirq        uint64        // clock ticks, whole machine
	ksoftirqd      uint64        // clock ticks, all ksoftirqd threads
}

// cpuPerOp is the CPU time a sample spent per operation, in µs.
type cpuPerOp struct {
	Client, Server, Softirq, Ksoftirqd float64
}

// perOp divides the CPU time spent between two readings by the
// operations completed meanwhile.
func perOp(before, after cpuCounters, ops float64) (cpuPerOp, error) {
	if ops <= 0 {
		return cpuPerOp{}, errors.New("no operations to divide the CPU time by")
	}
	if after.client < before.client || after.server < before.server ||
		after.softirq < before.softirq || after.ksoftirqd < before.ksoftirqd {
		return cpuPerOp{}, fmt.Errorf("a CPU counter went backwards (%+v, then %+v)", before, after)
	}
	usPerTick := 1e6 / float64(userHZ)
	return cpuPerOp{
		Client:    float64((after.client - before.client).Microseconds()) / ops,
		Server:    float64((after.server - before.server).Microseconds()) / ops,
		Softirq:   float64(after.softirq-before.softirq) * usPerTick / ops,
		Ksoftirqd: float64(after.ksoftirqd-before.ksoftirqd) * usPerTick / ops,
	}, nil
}

// parseCgroupUsage reads usage_usec from a cgroup v2 cpu.stat.
func parseCgroupUsage(cpuStat []byte) (time.Duration, error) {
	for _, line := range nonEmptyLines(cpuStat) {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			us, err := strconv.ParseUint(strings.TrimSpace(v), 10, 63)
			if err != nil {
				return 0, fmt.Errorf("cpu.stat line %q: not a count of µs", line)
			}
			return time.Duration(us) * time.Microsecond, nil
		}
	}
	return 0, errors.New("cpu.stat has no usage_usec")
}

// parseProcCgroup reads the cgroup v2 path of a process from its
// /proc/PID/cgroup (the "0::PATH" line).
func parseProcCgroup(data []byte) (string, error) {
	for _, line := range nonEmptyLines(data) {
		if path, ok := strings.CutPrefix(line, "0::"); ok && strings.HasPrefix(path, "/") {
			return path, nil
		}
	}
	return "", errors.New("the process is in no cgroup v2 (no 0:: line)")
}

// parseSoftirqTicks reads the softirq time of all CPUs together, in clock
// ticks, from the text of /proc/stat (the 7th field of its "cpu" line).
func parseSoftirqTicks(procStat []byte) (uint64, error) {
	for _, line := range nonEmptyLines(procStat) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "cpu" {
			continue
		}
		if len(fields) < 8 {
			return 0, fmt.Errorf("/proc/stat cpu line %q is too short", line)
		}
		v, err := strconv.ParseUint(fields[7], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat cpu line %q: softirq is not a number", line)
		}
		return v, nil
	}
	return 0, errors.New("/proc/stat has no cpu line")
}

// parseTaskTicks reads a task's user plus system time, in clock ticks,
// from its /proc/PID/stat (fields 14 and 15; the command name, field 2,
// may hold spaces and parentheses).
func parseTaskTicks(stat []byte) (uint64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, fmt.Errorf("malformed /proc/PID/stat %q", tail(stat))
	}
	fields := strings.Fields(string(stat[end+1:]))
	// fields[0] is field 3 (state): utime is field 14, stime 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/PID/stat %q is too short", tail(stat))
	}
	var ticks uint64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/PID/stat %q: time %q is not a number", tail(stat), f)
		}
		ticks += v
	}
	return ticks, nil
}

// kernelConfigValue reads a CONFIG_ option's value ("y", "m", a number)
// from the text of the kernel configuration; "" if it is not set.
func kernelConfigValue(config []byte, option string) string {
	for _, line := range nonEmptyLines(config) {
		if v, ok := strings.CutPrefix(line, option+"="); ok {
			return v
		}
	}
	return ""
}
