package router

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/secure"
)

// What the kernel says about a process, in /proc. The router reads it to
// decide what a caller may have (secure mode's enrolment), never taking a
// caller's word for it.

// errExited says a process is gone, or is no longer the one it was.
var errExited = errors.New("exited")

// processStart is when process pid started, in clock ticks since boot
// (field 22 of /proc/PID/stat): with the PID it names one process for good.
func processStart(pid int) (uint64, error) {
	b, err := secure.ReadProcFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if os.IsNotExist(err) {
			return 0, errExited
		}
		return 0, err
	}
	// The name (field 2) is in parentheses and may hold anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64) // field 22; fields[0] is field 3
}

// sameProcess checks that pid is still the process that started at start.
func sameProcess(pid int, start uint64) error {
	now, err := processStart(pid)
	if err != nil {
		return err
	}
	if now != start {
		return errExited
	}
	return nil
}

// statusFields reads the named fields of a /proc/.../status file.
func statusFields(path string, names ...string) (map[string]string, error) {
	b, err := secure.ReadProcFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errExited
		}
		return nil, err
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if ok && contains(names, name) {
			got[name] = strings.TrimSpace(value)
		}
	}
	for _, name := range names {
		if _, ok := got[name]; !ok {
			return nil, fmt.Errorf("%s: no %s line", path, name)
		}
	}
	return got, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// seccompFilter is the Seccomp value of a thread under a filter.
const seccompFilter = "2"

// checkFiltered checks that the status file says: under a seccomp filter.
func checkFiltered(status string) error {
	f, err := statusFields(status, "Seccomp")
	if err != nil {
		return err
	}
	if f["Seccomp"] != seccompFilter {
		return fmt.Errorf("%s: not under a seccomp filter (Seccomp: %s)", filepath.Dir(status), f["Seccomp"])
	}
	return nil
}

// checkUnderFilter checks that the status file says: under a seccomp
// filter and not traced.
func checkUnderFilter(status string) error {
	if err := checkFiltered(status); err != nil {
		return err
	}
	f, err := statusFields(status, "TracerPid")
	if err != nil {
		return err
	}
	if f["TracerPid"] != "0" {
		return fmt.Errorf("%s: traced by process %s", filepath.Dir(status), f["TracerPid"])
	}
	return nil
}

// checkThreadsUnderFilter checks every thread of process pid.
func checkThreadsUnderFilter(pid int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return errExited
	}
	for _, t := range tasks {
		if err := checkUnderFilter(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name())); err != nil {
			return err
		}
	}
	return nil
}

// fdLink is what /proc/PID/fd/FD links to ("anon_inode:[seccomp notify]").
func fdLink(pid, fd int) (string, error) {
	return os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
}

// isSeccompListener reports whether an fd link names a seccomp listener:
// "anon_inode:[seccomp notify]", without the brackets since Linux 6.x.
func isSeccompListener(link string) bool {
	return link == "anon_inode:[seccomp notify]" || link == "anon_inode:seccomp notify"
}

// pidfdPID is the PID (in the router's PID namespace) of the process a
// pidfd the router holds refers to, from its fdinfo.
func pidfdPID(pidfd int) (int, error) {
	f, err := statusFields(fmt.Sprintf("/proc/self/fdinfo/%d", pidfd), "Pid")
	if err != nil {
		return 0, errors.New("not a pidfd")
	}
	pid, err := strconv.Atoi(f["Pid"])
	switch {
	case err != nil:
		return 0, fmt.Errorf("pidfd: Pid %q", f["Pid"])
	case pid <= 0:
		return 0, errExited
	}
	return pid, nil
}

// sameFile reports whether fd a of process pidA and fd b of process pidB
// are the same open file (kcmp KCMP_FILE, which needs ptrace access to
// both: the router is root).
func sameFile(pidA, a, pidB, b int) (bool, error) {
	const kcmpFile = 0
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(pidA), uintptr(pidB), kcmpFile, uintptr(a), uintptr(b), 0)
	if errno != 0 {
		return false, fmt.Errorf("kcmp: %w", errno)
	}
	return r == 0, nil
}

// netnsOf is the inode of process pid's network namespace.
func netnsOf(pid int) (uint64, error) {
	return namespaceInode(fmt.Sprintf("/proc/%d/ns/net", pid))
}
