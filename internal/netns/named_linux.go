package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces are bind-mounted, as for iproute2.
const Dir = "/run/netns"

// maxUnmounts bounds the unmount loop of Delete: a file with more mounts
// stacked on it than this is left for a human to look at.
const maxUnmounts = 64

// Path is the file a named namespace is mounted on.
func Path(name string) string { return filepath.Join(Dir, name) }

// Create makes a new network namespace and mounts it on Dir/name. It fails
// if the name is taken.
func Create(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := shareDir(); err != nil {
		return err
	}
	path := Path(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
	if err != nil {
		return opError("create", name, err)
	}
	f.Close()
	if err := mountNew(path); err != nil {
		os.Remove(path)
		return opError("create", name, err)
	}
	return nil
}

// Delete unmounts Dir/name until nothing is mounted on it, then removes the
// file. A namespace that does not exist is not an error.
func Delete(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	path := Path(name)
	for i := 0; ; i++ {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // nothing (more) mounted, or no file at all
		}
		if err != nil {
			return opError("delete", name, fmt.Errorf("unmounting: %w", err))
		}
		if i == maxUnmounts {
			return opError("delete", name, fmt.Errorf("still mounted after %d unmounts", maxUnmounts))
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return opError("delete", name, err)
	}
	return nil
}

// List returns the names in Dir that start with prefix.
func List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing network namespaces: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("network namespace name %q: want a non-empty file name", name)
	}
	return nil
}

// shareDir makes Dir a mount point with shared propagation, holding
// iproute2's lock so that two creators never stack bind mounts of Dir.
func shareDir() error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", Dir, err)
	}
	lock, err := unix.Open(Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", Dir, err)
	}
	defer unix.Close(lock)
	if err := unix.Flock(lock, unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", Dir, err)
	}
	defer unix.Flock(lock, unix.LOCK_UN)
	madeMount := false
	for {
		err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) || madeMount {
			return fmt.Errorf("making %s a shared mount: %w", Dir, err)
		}
		// Not a mount point yet: bind it onto itself, then share it.
		if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting %s onto itself: %w", Dir, err)
		}
		madeMount = true
	}
}

// mountNew creates a network namespace on a locked thread and bind-mounts
// it on path, then returns the thread to its own namespace.
func mountNew(path string) error {
	return onNewThreadNamespace(func() error {
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting the namespace: %w", err)
		}
		return nil
	})
}

// onNewThreadNamespace runs fn on a locked OS thread moved into a new
// network namespace, and moves the thread back afterwards. A thread that
// cannot be moved back stays locked, so the runtime discards it.
func onNewThreadNamespace(fn func() error) error {
	runtime.LockOSThread()
	origin, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("opening this thread's namespace: %w", err)
	}
	defer unix.Close(origin)
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("unshare: %w", err)
	}
	fnErr := fn()
	if err := unix.Setns(origin, unix.CLONE_NEWNET); err != nil {
		return errors.Join(fnErr, fmt.Errorf("returning to the original namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return fnErr
}
