package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"

	named "github.com/slimnet/slim/internal/netns"
	"golang.org/x/sys/unix"
)

// inNamespace runs fn on an OS thread that has joined the named network
// namespace.
func inNamespace(name string, fn func() error) error {
	enter := func() error {
		target, err := netns.GetFromName(name)
		if err != nil {
			return fmt.Errorf("opening network namespace %s: %w", name, err)
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			return fmt.Errorf("entering network namespace %s: %w", name, err)
		}
		return nil
	}
	return onThreadIn(name, enter, fn)
}

// createNamespace makes a new named network namespace, the iproute2 way.
func createNamespace(name string) error { return named.Create(name) }

// onThreadIn locks the goroutine to its OS thread, lets enter move the
// thread into a network namespace, runs fn there and moves the thread back.
// A thread that may not be back in its own namespace (enter or the return
// failed) stays locked, so the Go runtime discards it with the goroutine
// instead of running other code in the wrong namespace.
func onThreadIn(name string, enter, fn func() error) error {
	runtime.LockOSThread()
	origin, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("reading current network namespace: %w", err)
	}
	defer origin.Close()
	if err := enter(); err != nil {
		return err
	}
	fnErr := fn()
	if err := netns.Set(origin); err != nil {
		return errors.Join(fnErr, fmt.Errorf("leaving network namespace %s: %w", name, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// deleteNamespace unmounts and removes a named network namespace. A
// namespace that does not exist is not an error.
func deleteNamespace(name string) error { return named.Delete(name) }

// namespacesWithPrefix lists the named network namespaces whose names start
// with prefix.
func namespacesWithPrefix(prefix string) ([]string, error) { return named.List(prefix) }

// namespaceID returns the inode that identifies a named namespace.
func namespaceID(name string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(named.Path(name), &st); err != nil {
		return 0, fmt.Errorf("network namespace %s: %w", name, err)
	}
	return st.Ino, nil
}

// pidsInNamespace returns the processes whose network namespace is the named
// one, like `ip netns pids`.
func pidsInNamespace(name string) ([]int, error) {
	id, err := namespaceID(name)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == id {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// startIn starts cmd inside the named network namespace. The child inherits
// the namespace of the OS thread that forks it.
func startIn(name string, cmd *exec.Cmd) error {
	return inNamespace(name, cmd.Start)
}

// execIn replaces the current process with argv running in the named
// network namespace.
func execIn(name string, argv []string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	return inNamespace(name, func() error {
		return unix.Exec(path, argv, os.Environ())
	})
}

// writeSysctl sets a network sysctl inside the named namespace; the
// /proc/sys/net tree shows the namespace of the thread that opens it.
func writeSysctl(namespace, key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return inNamespace(namespace, func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("setting %s in %s: %w", key, namespace, err)
		}
		return nil
	})
}
