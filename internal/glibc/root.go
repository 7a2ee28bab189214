package glibc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxSymlinks bounds symbolic links followed in one Resolve, as the
// kernel's 40.
const maxSymlinks = 40

// Root is a file system as a container sees it: a root directory and the
// mounts over it. Paths are resolved the way the container would resolve
// them (absolute symbolic links start again at its root), never outside
// it.
//
// The host path of the root of an empty file system is "".
type Root struct {
	Dir    string  // the host directory of "/"
	Mounts []Mount // in the order they are mounted
}

// Mount is a mount in a Root: Source, a host directory or file, appears at
// Destination (a path in the root). An empty Source is an empty file
// system (a tmpfs).
type Mount struct {
	Source, Destination string
}

// HostRoot is the host's own file system.
var HostRoot = Root{Dir: "/"}

// Resolve follows every symbolic link of name (a path in the root) and
// returns the path it ends at in the root and on the host. A missing file
// is an error that wraps fs.ErrNotExist.
func (r Root) Resolve(name string) (inRoot, onHost string, err error) {
	resolved := "/"
	rest := splitPath(name)
	links := 0
	for len(rest) > 0 {
		part := rest[0]
		rest = rest[1:]
		if part == ".." {
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, part)
		host, ok := r.hostPath(next)
		if !ok {
			return "", "", fmt.Errorf("%s: %w", next, fs.ErrNotExist)
		}
		if host == "" { // the root of an empty file system
			resolved = next
			continue
		}
		info, err := os.Lstat(host)
		if err != nil {
			return "", "", err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", "", fmt.Errorf("%s: too many levels of symbolic links", name)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", "", err
		}
		if path.IsAbs(target) {
			resolved = "/"
		}
		rest = append(splitPath(target), rest...)
	}
	host, ok := r.hostPath(resolved)
	if !ok {
		return "", "", fmt.Errorf("%s: %w", resolved, fs.ErrNotExist)
	}
	return resolved, host, nil
}

// Exists reports whether name exists in the root (after its links).
func (r Root) Exists(name string) bool {
	_, _, err := r.Resolve(name)
	return err == nil
}

// IsNotExist reports whether err says a file is missing.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// hostPath maps a clean absolute path of the root to the host: under the
// last mount whose destination holds it, else under Dir. ok is false
// inside an empty file system.
func (r Root) hostPath(name string) (string, bool) {
	best := -1
	for i, m := range r.Mounts {
		dest := path.Clean("/" + m.Destination)
		if within(name, dest) && (best < 0 || len(dest) >= len(path.Clean("/"+r.Mounts[best].Destination))) {
			best = i
		}
	}
	if best < 0 {
		return filepath.Join(r.Dir, name), true
	}
	m := r.Mounts[best]
	rel := strings.TrimPrefix(name, path.Clean("/"+m.Destination))
	if m.Source == "" {
		return "", rel == ""
	}
	return filepath.Join(m.Source, rel), true
}

// within reports whether name is dir or below it.
func within(name, dir string) bool {
	return name == dir || dir == "/" || strings.HasPrefix(name, dir+"/")
}

func splitPath(name string) []string {
	var parts []string
	for _, p := range strings.Split(name, "/") {
		if p != "" && p != "." {
			parts = append(parts, p)
		}
	}
	return parts
}
