package secure

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
)

// RouterID names the cgroups and pins of the router whose directory is
// dir, so that routers of different directories (a lab runs several on one
// machine) never share them.
func RouterID(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return "r" + hex.EncodeToString(sum[:6])
}

// PinDir is where router id pins its maps and links, under a bpffs.
func PinDir(bpffs, id string) string { return filepath.Join(bpffs, "slim", id) }

// RemoveLeftovers removes what a router that did not stop cleanly (killed,
// crashed) left in the kernel: its pinned links, which detaches its
// programs, its pinned maps and its cgroups. It is a no-op for a router
// that left nothing.
func RemoveLeftovers(id string) error {
	var errs []error
	if bpffs, err := BPFFSMount(); err == nil {
		dir := PinDir(bpffs, id)
		d := &Datapath{pinDir: dir}
		d.detachPinned()
		removeMapPins(dir)
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		os.Remove(filepath.Dir(dir)) // <bpffs>/slim, if no other router uses it
	}
	if base, err := CgroupBase(id); err == nil {
		if _, err := os.Stat(base); err == nil {
			errs = append(errs, RemoveCgroups(base))
		}
	}
	return errors.Join(errs...)
}
