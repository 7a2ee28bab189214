package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/secure"
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
	mount, err := secure.Cgroup2Mount()
	if err != nil {
		return nil, fmt.Errorf("the fixed-load bench accounts CPU per process in cgroup v2: %w", err)
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
