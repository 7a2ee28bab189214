package secure

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Cgroups are the cgroup v2 directories of one router: its own, whose
// sockets the programs guard, and one per container started with
// `slim exec`, which get the overlay policy check:
//
//	<cgroup2>/slim/<id>/router
//	<cgroup2>/slim/<id>/containers/<name>
type Cgroups struct {
	Base     string // <cgroup2>/slim/<id>
	RouterID uint64 // cgroup id of the router's directory
	root     string // the cgroup v2 mount
	previous string // where the router was before it moved, under root
}

// CgroupBase is the directory of router id's cgroups.
func CgroupBase(id string) (string, error) {
	root, err := Cgroup2Mount()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "slim", id), nil
}

func cgroupRoot(base string) string { return filepath.Dir(filepath.Dir(base)) }

// EnterRouterCgroup creates the router's cgroup and moves this process
// (all its threads) into it, so that every socket it creates from now on
// is one the programs guard.
func EnterRouterCgroup(id string) (*Cgroups, error) {
	base, err := CgroupBase(id)
	if err != nil {
		return nil, err
	}
	c := &Cgroups{Base: base, root: cgroupRoot(base)}
	if c.previous, err = currentCgroup(); err != nil {
		return nil, err
	}
	dir := filepath.Join(base, "router")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("secure mode: creating cgroup %s: %w", dir, err)
	}
	if err := movePID(dir, os.Getpid()); err != nil {
		return nil, err
	}
	if c.RouterID, err = CgroupID(dir); err != nil {
		return nil, err
	}
	return c, nil
}

// RouterDir is the router's cgroup directory.
func (c *Cgroups) RouterDir() string { return filepath.Join(c.Base, "router") }

// ContainerDir is the cgroup of a container's processes.
func (c *Cgroups) ContainerDir(name string) string {
	return filepath.Join(c.Base, "containers", name)
}

// EnterContainer moves process pid into the container's cgroup, creating
// it; created reports whether it is new.
func (c *Cgroups) EnterContainer(name string, pid int) (dir string, created bool, err error) {
	dir = c.ContainerDir(name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, fmt.Errorf("secure mode: creating cgroup %s: %w", dir, err)
	}
	return dir, created, movePID(dir, pid)
}

// Release moves the router back where it was and leaves its cgroups: the
// sockets it made stay in its cgroup, under the programs attached there,
// and a router that starts later moves back in.
func (c *Cgroups) Release() error {
	if c.previous == "" {
		return nil
	}
	return movePID(filepath.Join(c.root, c.previous), os.Getpid())
}

// Leave moves the router back where it was and removes the cgroups that
// are empty; a container cgroup with processes left stays.
func (c *Cgroups) Leave() error {
	return errors.Join(c.Release(), RemoveCgroups(c.Base))
}

// PopulatedContainers names the container cgroups that hold processes
// (`slim exec` put them there, under the overlay policy check).
func (c *Cgroups) PopulatedContainers() []string {
	entries, _ := os.ReadDir(filepath.Join(c.Base, "containers"))
	var names []string
	for _, e := range entries {
		if e.IsDir() && populated(c.ContainerDir(e.Name())) {
			names = append(names, e.Name())
		}
	}
	return names
}

// populated says whether a cgroup or one below it holds a process
// (cgroup.events); a cgroup that cannot be read counts as populated.
func populated(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	return !strings.Contains(string(data), "populated 0")
}

// RemoveCgroups removes a router's cgroup tree, deepest first. Cgroups
// that still hold processes (and those above them) stay.
func RemoveCgroups(base string) error {
	var dirs []string
	filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
		}
	}
	parent := filepath.Dir(base)
	unix.Rmdir(parent) // <cgroup2>/slim, if no other router uses it
	return errors.Join(errs...)
}

// CgroupID is the id the kernel gives a cgroup v2 directory: its inode.
func CgroupID(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("cgroup id of %s: %w", dir, err)
	}
	return st.Ino, nil
}

func movePID(dir string, pid int) error {
	procs := filepath.Join(dir, "cgroup.procs")
	if err := os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("secure mode: moving process %d into %s: %w", pid, dir, err)
	}
	return nil
}

// ProcessDir is the cgroup v2 directory of process pid, under the mount
// found when the router's cgroups were made: the mount table is not read
// again at every POOL and LISTEN that secure mode checks (checkEnrolled).
func (c *Cgroups) ProcessDir(pid int) (string, error) {
	rel, err := cgroupOf(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	return filepath.Join(c.root, rel), nil
}

// currentCgroup is this process's cgroup v2 path ("0::/path" in
// /proc/self/cgroup).
func currentCgroup() (string, error) { return cgroupOf("/proc/self/cgroup") }

func cgroupOf(path string) (string, error) {
	b, err := ReadProcFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest, nil
		}
	}
	return "", fmt.Errorf("secure mode: no cgroup v2 line in %s", path)
}
