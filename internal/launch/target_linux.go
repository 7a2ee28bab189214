package launch

import (
	"bytes"
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

const reasonSetID = "is setuid/setgid (the loader ignores LD_PRELOAD for it)"

// preloadBlocker says why the shim cannot be preloaded into the program at
// path, as the end of a sentence starting with the program's name ("is a
// static binary"), or returns "" when it can. Non-ELF files (scripts) are
// preloadable: their interpreter gets the shim.
func preloadBlocker(path string) (string, error) {
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
	switch {
	case !hasInterp:
		return "is a static binary", nil
	case setID:
		return reasonSetID, nil
	case hasFileCapabilities(path):
		return "has file capabilities (the loader ignores LD_PRELOAD for it)", nil
	}
	if shim := shimELFHeader(); shim != nil && (bin.Class != shim.Class || bin.Machine != shim.Machine) {
		return fmt.Sprintf("is built for %v/%v, the shim for %v/%v", bin.Machine, bin.Class, shim.Machine, shim.Class), nil
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
