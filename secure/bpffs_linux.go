package secure

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// defaultBPFFS is where bpffs is conventionally mounted.
const defaultBPFFS = "/sys/fs/bpf"

// EnsureBPFFS returns where a bpffs is mounted, mounting one at
// /sys/fs/bpf if there is none. The mount is left in place: other tools
// (bpftool, other routers of a lab) share it.
func EnsureBPFFS() (string, error) {
	point, err := BPFFSMount()
	if err == nil {
		return point, nil
	}
	if !errors.Is(err, ErrNotMounted) {
		return "", err
	}
	if err := os.MkdirAll(defaultBPFFS, 0o700); err != nil {
		return "", fmt.Errorf("secure mode: creating %s: %w", defaultBPFFS, err)
	}
	if err := unix.Mount("bpf", defaultBPFFS, "bpf", 0, "mode=0700"); err != nil && !errors.Is(err, unix.EBUSY) {
		return "", fmt.Errorf("secure mode: mounting bpffs at %s: %w", defaultBPFFS, err)
	}
	return defaultBPFFS, nil
}
