package lab

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/slimnet/slim/secure"
)

// Down removes every namespace of the named lab, after stopping the
// processes running in them, and its state file. It works on a lab that is
// half built or whose state file is gone, and on one that is not up at all.
func Down(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	namespaces, err := namespacesWithPrefix(name + "-")
	if err != nil {
		return err
	}
	// Containers (most dashes) first, the wire last.
	sort.Slice(namespaces, func(a, b int) bool {
		return strings.Count(namespaces[a], "-") > strings.Count(namespaces[b], "-")
	})
	var errs []error
	for _, ns := range namespaces {
		if err := stopProcesses(ns); err != nil {
			errs = append(errs, err)
		}
		if err := deleteNamespace(ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeSecureLeftovers(name); err != nil {
		errs = append(errs, err)
	}
	if err := removeState(name); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// stopProcesses sends SIGTERM to every process in the namespace, and
// SIGKILL to those still there after a grace period.
func stopProcesses(namespace string) error {
	pids, err := pidsInNamespace(namespace)
	if err != nil || len(pids) == 0 {
		return err
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if pids, _ = pidsInNamespace(namespace); len(pids) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	time.Sleep(50 * time.Millisecond)
	if pids, _ = pidsInNamespace(namespace); len(pids) > 0 {
		return fmt.Errorf("processes %v in %s survived SIGKILL", pids, namespace)
	}
	return nil
}

// removeSecureLeftovers removes the cgroups and bpffs pins of the lab's
// routers that were killed, or stopped while host sockets they made were
// open (their programs guarded them; the processes are gone now).
func removeSecureLeftovers(name string) error {
	dirs, err := filepath.Glob(filepath.Join(StateDir, name, "h*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		if err := secure.RemoveLeftovers(secure.RouterID(dir)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
