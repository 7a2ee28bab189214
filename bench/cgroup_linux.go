package bench

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupTree is the bench's own cgroup v2 directory,
// <cgroup2>/slim-bench-<pid>, under which each fixed-load sample gets a
// cgroup for its server and one for its client.
type cgroupTree struct {
	mount string // where cgroup v2 is mounted
	dir   string
	next  int // samples so far
}

func newCgroupTree() (*cgroupTree, error) {
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	mount, err := findCgroup2(mounts)
	if err != nil {
		return nil, err
	}
	removeStaleCgroups(mount)
	dir := filepath.Join(mount, fmt.Sprintf("slim-bench-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", dir, err)
	}
	return &cgroupTree{mount: mount, dir: dir}, nil
}

// removeStaleCgroups removes what benches that were killed left: the trees
// of processes that are gone (or of an earlier process that had this
// one's ID), if empty. Trees of benches still running stay.
func removeStaleCgroups(mount string) {
	dirs, _ := filepath.Glob(filepath.Join(mount, "slim-bench-*"))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "slim-bench-"))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); pid == os.Getpid() || errors.Is(err, syscall.ESRCH) {
			removeCgroupDir(dir) // best effort: one still in use stays
		}
	}
}

// remove removes the tree; its sample cgroups are removed already.
func (tree *cgroupTree) remove() error { return removeCgroupDir(tree.dir) }

// cgroup is a cgroup directory held open, for starting processes in it.
type cgroup struct {
	path string
	dir  *os.File
}

// sampleCgroups are the cgroups of one sample's server and client.
type sampleCgroups struct {
	server, client *cgroup
}

// sample creates the cgroups of the next sample.
func (tree *cgroupTree) sample() (*sampleCgroups, error) {
	tree.next++
	cgs := &sampleCgroups{}
	var err error
	if cgs.server, err = openNewCgroup(filepath.Join(tree.dir, fmt.Sprintf("s%d-server", tree.next))); err != nil {
		return nil, err
	}
	if cgs.client, err = openNewCgroup(filepath.Join(tree.dir, fmt.Sprintf("s%d-client", tree.next))); err != nil {
		return nil, errors.Join(err, cgs.remove())
	}
	return cgs, nil
}

func openNewCgroup(path string) (*cgroup, error) {
	if err := os.Mkdir(path, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup %s: %w", path, err)
	}
	dir, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("opening cgroup %s: %w", path, err), unix.Rmdir(path))
	}
	return &cgroup{path: path, dir: dir}, nil
}

// remove removes the sample's cgroups, once their processes are gone.
func (cgs *sampleCgroups) remove() error {
	var errs []error
	for _, cg := range []*cgroup{cgs.server, cgs.client} {
		if cg != nil {
			cg.dir.Close()
			errs = append(errs, removeCgroupDir(cg.path))
		}
	}
	return errors.Join(errs...)
}

// startIn makes cmd start in the cgroup (clone3 with CLONE_INTO_CGROUP):
// the process and all it forks are accounted there from the first
// instruction.
func (cg *cgroup) startIn(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = int(cg.dir.Fd())
}

// removeCgroupDir removes a cgroup directory and the cgroups under it,
// deepest first. A cgroup whose last processes were just killed may stay
// busy for a moment; it is retried for up to cgroupRemoveWait.
func removeCgroupDir(dir string) error {
	var dirs []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		deadline := time.Now().Add(cgroupRemoveWait)
		for {
			err := unix.Rmdir(dirs[i])
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("removing cgroup %s: %w", dirs[i], err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

const cgroupRemoveWait = 3 * time.Second

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
