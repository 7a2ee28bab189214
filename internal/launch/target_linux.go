package launch

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"

	prebuilt "github.com/slimnet/slim/embed"
)

const (
	reasonSetID    = "is setuid/setgid (the loader ignores LD_PRELOAD for it)"
	reasonFileCaps = "has file capabilities (the loader ignores LD_PRELOAD for it)"
)

// blocker says why the shim cannot be preloaded into a program, as the
// end of a sentence starting with the program's name ("is a static
// binary"); supervisable says whether the supervisor can accelerate it
// instead (package supervise).
type blocker struct {
	reason       string
	supervisable bool
}

// Reasons the supervisor takes over from the shim.
const (
	reasonStatic = "is a static binary"
	reasonGo     = "is a Go program (it makes system calls without libc)"
)

// preloadBlocker says why the shim cannot be preloaded into the program at
// path, or returns a zero blocker when it can. Non-ELF files (scripts) are
// preloadable: their interpreter gets the shim. A Go program, even one
// linked with glibc, makes its socket calls without it: the shim would see
// none of them.
func preloadBlocker(path string) (blocker, error) {
	reason, err := loaderBlocker(path)
	if err != nil {
		return blocker{}, err
	}
	if why := privileged(path); why != "" {
		// The filter wants no_new_privs, which would take its
		// privileges away: left alone.
		return blocker{reason: why}, nil
	}
	switch {
	case strings.HasPrefix(reason, "is built for"):
		return blocker{reason: reason}, nil
	case isGoProgram(path):
		return blocker{reason: reasonGo, supervisable: true}, nil
	}
	return blocker{reason: reason, supervisable: reason != ""}, nil
}

// privileged says why path gains privileges when executed (setuid,
// setgid, file capabilities), or "".
func privileged(path string) string {
	info, err := os.Stat(path)
	switch {
	case err != nil:
		return ""
	case info.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0:
		return reasonSetID
	case hasFileCapabilities(path):
		return reasonFileCaps
	}
	return ""
}

// isGoProgram reports whether path carries Go build information.
func isGoProgram(path string) bool {
	_, err := buildinfo.ReadFile(path)
	return err == nil
}

// loaderBlocker says why the dynamic loader would not preload the shim
// into the program at path, or "" when it would.
func loaderBlocker(path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", path, err)
	}
	setID := info.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrPermission) {
		// Execute-only: typical of setuid programs. Otherwise nothing to
		// inspect; the loader decides.
		if setID {
			return reasonSetID, nil
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", path, err)
	}
	defer f.Close()
	bin, err := elf.NewFile(f)
	if err != nil {
		var formatErr *elf.FormatError
		if errors.As(err, &formatErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "", nil // not ELF: a script or something binfmt_misc runs
		}
		return "", fmt.Errorf("inspect %s: %w", path, err)
	}
	defer bin.Close()

	interp, hasInterp, err := interpreter(bin)
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", path, err)
	}
	// Another architecture or word size: the shim cannot be loaded into
	// it, and the supervisor traps the native 64-bit system calls only (a
	// 32-bit program's go through the compat entry points, unseen). Static
	// or not, it is neither preloaded nor supervised.
	if shim := shimELFHeader(); shim != nil && (bin.Class != shim.Class || bin.Machine != shim.Machine) {
		return fmt.Sprintf("is built for %v/%v, the shim and the supervisor for %v/%v", bin.Machine, bin.Class, shim.Machine, shim.Class), nil
	}
	switch {
	case !hasInterp:
		return reasonStatic, nil
	case setID:
		return reasonSetID, nil
	case hasFileCapabilities(path):
		return reasonFileCaps, nil
	}
	if !strings.Contains(interp, "ld-linux") {
		return fmt.Sprintf("does not use the glibc loader (its loader is %s)", interp), nil
	}
	return glibcBlocker(interp)
}

// interpreter returns the program interpreter (PT_INTERP), if any.
func interpreter(bin *elf.File) (string, bool, error) {
	for _, p := range bin.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		data, err := io.ReadAll(p.Open())
		if err != nil {
			return "", true, fmt.Errorf("read PT_INTERP: %w", err)
		}
		return string(bytes.TrimRight(data, "\x00")), true, nil
	}
	return "", false, nil
}

// hasFileCapabilities reports whether path carries file capabilities, which
// make the kernel run it in secure-execution mode like a setuid program.
func hasFileCapabilities(path string) bool {
	n, err := syscall.Getxattr(path, "security.capability", nil)
	return err == nil && n > 0
}

// shimELFHeader is the ELF header of the embedded shim, or nil if it cannot
// be parsed (then the architecture check is skipped).
var shimELFHeader = sync.OnceValue(func() *elf.FileHeader {
	f, err := elf.NewFile(bytes.NewReader(prebuilt.Shim()))
	if err != nil {
		return nil
	}
	return &f.FileHeader
})

// execProgram replaces slim with the planned program.
func execProgram(p plan) error {
	if err := syscall.Exec(p.path, p.argv, p.env); err != nil {
		return fmt.Errorf("exec %s: %w", p.path, err)
	}
	return nil
}
