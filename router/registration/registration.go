// Package registration is the saved form of the containers registered
// with a router while it runs: one JSON file per container in
// DIR/containers (DIR is the router's directory), written atomically.
//
// The router writes a record when it registers a container through its
// control API and removes it when it unregisters one; it reads them all at
// start and every few seconds, so registrations outlive the router's
// restart. The CNI plugin writes and removes records itself too, before it
// calls the router: a container added while the router is down is served
// when the router is back, and one deleted meanwhile is not.
package registration

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slimnet/slim/internal/strictjson"
)

// SubDir is the records' directory inside the router's directory.
const SubDir = "containers"

// suffix ends every record's file name.
const suffix = ".json"

// Record is one registered container.
type Record struct {
	Name string `json:"name"`
	// Netns is the path of its network namespace; NetnsInode the inode
	// that path had when the container was registered: a path that names
	// another namespace later is not this container.
	Netns      string     `json:"netns"`
	NetnsInode uint64     `json:"netns_inode"`
	Addr       netip.Addr `json:"addr"`
	// ContainerID and IfName name the CNI attachment that made it.
	ContainerID string    `json:"container_id,omitempty"`
	IfName      string    `json:"ifname,omitempty"`
	Added       time.Time `json:"added"`
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// CheckName says what is wrong with a container name, if anything. Names
// become file names (here and as secure mode's cgroups), so they are
// restricted to 1-63 letters, digits, '_', '.' and '-'.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("container name %q: want 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Dir is the records' directory of the router whose directory is
// routerDir.
func Dir(routerDir string) string { return filepath.Join(routerDir, SubDir) }

// Path is the file of the named container's record.
func Path(routerDir, name string) string { return filepath.Join(Dir(routerDir), name+suffix) }

// Write saves a record atomically (a temporary file renamed over the
// record), creating the directory, readable by root only.
func Write(routerDir string, rec Record) error {
	if err := CheckName(rec.Name); err != nil {
		return err
	}
	dir := Dir(routerDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("saving container %s: %w", rec.Name, err)
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+rec.Name+".*.tmp")
	if err != nil {
		return fmt.Errorf("saving container %s: %w", rec.Name, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, nothing is there
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), Path(routerDir, rec.Name))
	}
	if err != nil {
		return fmt.Errorf("saving container %s: %w", rec.Name, err)
	}
	return nil
}

// Remove deletes a record and says whether there was one.
func Remove(routerDir, name string) (bool, error) {
	if err := CheckName(name); err != nil {
		return false, err
	}
	err := os.Remove(Path(routerDir, name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("removing the record of container %s: %w", name, err)
	}
	return true, nil
}

// Read loads the named container's record; os.ErrNotExist if it has none.
func Read(routerDir, name string) (Record, error) {
	if err := CheckName(name); err != nil {
		return Record{}, err
	}
	return readFile(Path(routerDir, name), name)
}

func readFile(path, name string) (Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Record{}, err
	}
	var rec Record
	if err := strictjson.Unmarshal(data, &rec); err != nil {
		return Record{}, fmt.Errorf("container record %s is corrupt (remove it, or register the container again): %w", path, err)
	}
	if rec.Name != name {
		return Record{}, fmt.Errorf("container record %s names container %q, not %q", path, rec.Name, name)
	}
	if rec.Netns == "" || !filepath.IsAbs(rec.Netns) || rec.NetnsInode == 0 || !rec.Addr.Is4() {
		return Record{}, fmt.Errorf("container record %s: want an absolute netns path, its netns_inode and an IPv4 addr", path)
	}
	return rec, nil
}

// List reads every record, sorted by name. A record that cannot be read
// is left out and reported in the errors, each naming its file; a
// missing directory is no records.
func List(routerDir string) ([]Record, []error) {
	entries, err := os.ReadDir(Dir(routerDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("listing container records: %w", err)}
	}
	var (
		records []Record
		errs    []error
	)
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok || !e.Type().IsRegular() || CheckName(name) != nil {
			continue // temporary files, strays
		}
		rec, err := readFile(filepath.Join(Dir(routerDir), e.Name()), name)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		records = append(records, rec)
	}
	slices.SortFunc(records, func(a, b Record) int { return strings.Compare(a.Name, b.Name) })
	return records, errs
}
