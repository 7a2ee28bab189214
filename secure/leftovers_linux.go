package secure

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
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

// RemoveLeftovers removes what a router left in the kernel (killed, or
// stopped while host sockets it made were open): its pinned links, which
// detaches its programs, its pinned maps and its cgroups. Sockets still
// open are no longer guarded. It is a no-op for a router that left
// nothing.
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

// Left is what a router left in the kernel (LeftBehind).
type Left struct {
	PinDir string
	// OpenSockets counts the host sockets it made that are still open;
	// Counted is false when that cannot be told (no count pinned, or some
	// sockets were never tracked).
	OpenSockets int
	Counted     bool
	// Enrolled names the containers whose cgroups hold processes.
	Enrolled []string
}

// LeftBehind says what router id left in the kernel; nil for nothing.
func LeftBehind(id string) (*Left, error) {
	bpffs, err := BPFFSMount()
	if err != nil {
		if errors.Is(err, ErrNotMounted) {
			return leftCgroups(id), nil
		}
		return nil, err
	}
	dir := PinDir(bpffs, id)
	if !hasPins(dir) {
		return leftCgroups(id), nil
	}
	left := leftCgroups(id)
	if left == nil {
		left = &Left{}
	}
	left.PinDir = dir
	left.OpenSockets, left.Counted = countPinnedSockets(dir)
	return left, nil
}

// leftCgroups reports the router's cgroups (without pins: a half-done
// cleanup); nil if there are none.
func leftCgroups(id string) *Left {
	base, err := CgroupBase(id)
	if err != nil {
		return nil
	}
	if _, err := os.Stat(base); err != nil {
		return nil
	}
	return &Left{Counted: true, Enrolled: (&Cgroups{Base: base}).PopulatedContainers()}
}

func countPinnedSockets(dir string) (int, bool) {
	live, err := ebpf.LoadPinnedMap(filepath.Join(dir, "slim_live"), nil)
	if err != nil {
		return 0, false
	}
	defer live.Close()
	lost, err := ebpf.LoadPinnedMap(filepath.Join(dir, "slim_live_lost"), nil)
	if err != nil {
		return 0, false
	}
	defer lost.Close()
	var missed uint64
	if err := lost.Lookup(uint32(0), &missed); err != nil || missed != 0 {
		return 0, false
	}
	n, err := countKeys(live)
	return n, err == nil
}
