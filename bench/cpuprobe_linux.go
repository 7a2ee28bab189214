package bench

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cpuProbe reads a sample's CPU counters. The cgroups it reads are the
// ones the server's and the client's processes are in when located: the
// sample's own, or, in the secure column, the container cgroup the secure
// router enrolls a program started under slim exec into (whose usage
// then counts from the enrolment on; the bench reads it only after).
type cpuProbe struct {
	mount          string
	server, client string // cgroup directories
	ksoftirqd      []int  // thread IDs
}

// locate finds the cgroups of the server's and the client's processes.
func (p *cpuProbe) locate(serverPID, clientPID int) error {
	var err error
	if p.server, err = p.cgroupOf(serverPID); err != nil {
		return fmt.Errorf("the server's cgroup: %w", err)
	}
	if p.client, err = p.cgroupOf(clientPID); err != nil {
		return fmt.Errorf("the client's cgroup: %w", err)
	}
	return nil
}

func (p *cpuProbe) cgroupOf(pid int) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	rel, err := parseProcCgroup(data)
	if err != nil {
		return "", err
	}
	return filepath.Join(p.mount, rel), nil
}

// stayed checks that a process still running is in the cgroup it was
// located in: if it moved, the counters would not be its own.
func (p *cpuProbe) stayed(role string, pid int, want string) error {
	got, err := p.cgroupOf(pid)
	if err != nil || got == want {
		return nil // gone: its time stays counted where it was
	}
	return fmt.Errorf("the %s moved from cgroup %s to %s while being measured", role, want, got)
}

// read reads the counters.
func (p *cpuProbe) read() (cpuCounters, error) {
	var c cpuCounters
	var err error
	if c.server, err = readCgroupUsage(p.server); err != nil {
		return c, err
	}
	if c.client, err = readCgroupUsage(p.client); err != nil {
		return c, err
	}
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c, fmt.Errorf("reading CPU times: %w", err)
	}
	if c.softirq, err = parseSoftirqTicks(stat); err != nil {
		return c, err
	}
	for _, tid := range p.ksoftirqd {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", tid))
		if err != nil {
			return c, fmt.Errorf("reading the CPU time of ksoftirqd thread %d: %w", tid, err)
		}
		ticks, err := parseTaskTicks(data)
		if err != nil {
			return c, err
		}
		c.ksoftirqd += ticks
	}
	return c, nil
}

func readCgroupUsage(dir string) (time.Duration, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return 0, fmt.Errorf("reading the CPU usage of cgroup %s: %w", dir, err)
	}
	return parseCgroupUsage(data)
}

// ksoftirqdThreads lists the kernel's ksoftirqd/N threads.
func ksoftirqdThreads() ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var tids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.HasPrefix(string(comm), "ksoftirqd/") {
			tids = append(tids, pid)
		}
	}
	if len(tids) == 0 {
		return nil, errors.New("no ksoftirqd thread is visible in /proc (is the bench in a PID namespace?)")
	}
	return tids, nil
}

// irqTimeAccounting reports whether the running kernel counts softirq
// time apart from the tasks it interrupts (CONFIG_IRQ_TIME_ACCOUNTING),
// from /proc/config.gz; known is false if the configuration is not there.
func irqTimeAccounting() (on, known bool) {
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		return false, false
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return false, false
	}
	config, err := io.ReadAll(io.LimitReader(z, 16<<20))
	if err != nil {
		return false, false
	}
	return kernelConfigValue(config, "CONFIG_IRQ_TIME_ACCOUNTING") == "y", true
}
