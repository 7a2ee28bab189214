package router

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Enrolment rests on kernel facts the router reads itself (docs/secure.md,
// "Enrolment"), never on what the caller says. The caller of ENROLL must be
// slim exec after it put itself under the ioctl guard:
//
//   - it runs this router's own binary (the same file, or one with the
//     same SHA-256), so its code is the code that installs the filter and
//     hands the listener to the guard, and nobody traces it;
//   - every thread of it is under a seccomp filter;
//   - the listener it names is a seccomp listener it holds, and the guard
//     (a pidfd it sends) holds that very file (kcmp): a process that also
//     runs this binary, is traced by nobody and is in the caller's network
//     namespace.

// trustedBinary is the router's own executable, which slim exec and the
// guard must run.
type trustedBinary struct {
	mu     sync.Mutex
	self   fileID
	digest []byte            // SHA-256 of the router's binary, once needed
	seen   map[fileID][]byte // digests of other files, by identity
}

// fileID identifies a file's content: the same inode not changed since.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
}

func fileIDOf(f *os.File) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}, nil
}

// newTrustedBinary identifies the router's own executable.
func newTrustedBinary() (*trustedBinary, error) {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("secure mode: the router's own binary: %w", err)
	}
	defer f.Close()
	id, err := fileIDOf(f)
	if err != nil {
		return nil, fmt.Errorf("secure mode: the router's own binary: %w", err)
	}
	return &trustedBinary{self: id, seen: map[fileID][]byte{}}, nil
}

// maxSeen bounds the digests remembered for other files.
const maxSeen = 16

// runs checks that process pid runs the router's binary: the same file,
// or a copy with the same content.
func (b *trustedBinary) runs(pid int) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return fmt.Errorf("its executable: %w", err)
	}
	defer f.Close()
	id, err := fileIDOf(f)
	if err != nil {
		return fmt.Errorf("its executable: %w", err)
	}
	if id == b.self {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.digest == nil {
		if b.digest, err = digestOf("/proc/self/exe"); err != nil {
			return fmt.Errorf("the router's own binary: %w", err)
		}
	}
	sum, ok := b.seen[id]
	if !ok {
		if sum, err = digestFile(f); err != nil {
			return fmt.Errorf("its executable: %w", err)
		}
		if len(b.seen) >= maxSeen {
			clear(b.seen)
		}
		b.seen[id] = sum
	}
	if string(sum) != string(b.digest) {
		return errors.New("it does not run this router's slim binary (another file, another version)")
	}
	return nil
}

func digestOf(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return digestFile(f)
}

func digestFile(f *os.File) ([]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// verifyGuarded checks that process pid, which started at start (ENROLL's
// caller), is slim exec under its ioctl guard: listener is the fd number of
// the filter's listener in that process, guardPidfd a pidfd of the guard
// (now the router's).
func (b *trustedBinary) verifyGuarded(pid int, start uint64, listener, guardPidfd int) error {
	if err := b.runs(pid); err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	if err := checkThreadsUnderFilter(pid); err != nil {
		return err
	}
	if link, err := fdLink(pid, listener); err != nil || !isSeccompListener(link) {
		return fmt.Errorf("process %d: fd %d is not a seccomp listener (%q, %v)", pid, listener, link, err)
	}
	guard, err := pidfdPID(guardPidfd)
	if err != nil {
		return fmt.Errorf("the guard: %w", err)
	}
	if err := b.verifyGuard(pid, listener, guard); err != nil {
		return fmt.Errorf("the guard, process %d: %w", guard, err)
	}
	// Both still the processes looked at: the guard's pidfd pins it (a
	// PID reused while it was read would fail here), the caller's start.
	if again, err := pidfdPID(guardPidfd); err != nil || again != guard {
		return fmt.Errorf("the guard, process %d: %w", guard, errExited)
	}
	if err := sameProcess(pid, start); err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	return nil
}

// verifyGuard checks process guard: this router's binary, traced by
// nobody, in the caller's network namespace, holding the caller's
// listener.
func (b *trustedBinary) verifyGuard(caller, listener, guard int) error {
	if err := b.runs(guard); err != nil {
		return err
	}
	f, err := statusFields(fmt.Sprintf("/proc/%d/status", guard), "TracerPid")
	if err != nil {
		return err
	}
	if f["TracerPid"] != "0" {
		return fmt.Errorf("traced by process %s", f["TracerPid"])
	}
	callerNet, err1 := netnsOf(caller)
	guardNet, err2 := netnsOf(guard)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if callerNet != guardNet {
		return errors.New("in another network namespace than the program")
	}
	return holdsFile(guard, caller, listener)
}

// holdsFile checks that process guard holds the file that process caller
// has as fd.
func holdsFile(guard, caller, fd int) error {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", guard))
	if err != nil {
		return errExited
	}
	var cmpErr error
	for _, e := range entries {
		gfd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if link, _ := fdLink(guard, gfd); !isSeccompListener(link) {
			continue
		}
		same, err := sameFile(caller, fd, guard, gfd)
		if same {
			return nil
		}
		cmpErr = errors.Join(cmpErr, err)
	}
	if cmpErr != nil {
		return fmt.Errorf("it does not hold the program's seccomp listener, as far as the router can see: %w", cmpErr)
	}
	return errors.New("it does not hold the program's seccomp listener")
}
