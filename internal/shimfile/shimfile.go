package shimfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// DefaultDir is where Install puts the shim unless told otherwise.
const DefaultDir = "/run/slim/shim"

const (
	fileMode = 0o644 // every process in every container must be able to read it
	dirMode  = 0o755
)

// Name returns the file name of a shim with the given content:
// libslim-<first 16 hex digits of its SHA-256>.so.
func Name(content []byte) string {
	sum := sha256.Sum256(content)
	return "libslim-" + hex.EncodeToString(sum[:8]) + ".so"
}

// Install makes sure dir holds the shim with the given content and returns
// its path. An existing file of the right name is reused only if it is a
// regular file, mode 0644, with exactly that content; otherwise it is
// replaced. Writes are atomic (temporary file in dir, fsync, rename), so
// concurrent Installs and processes preloading the file never see it
// half-written. Missing directories are created with mode 0755.
func Install(dir string, content []byte) (string, error) {
	path := filepath.Join(dir, Name(content))
	ok, err := upToDate(path, content)
	if err != nil {
		return "", err
	}
	if ok {
		return path, nil
	}
	if err := mkdirAll(dir); err != nil {
		return "", err
	}
	if err := writeAtomic(path, content); err != nil {
		return "", err
	}
	return path, nil
}

// upToDate reports whether path is a regular file with the wanted mode and
// content. A missing or unreadable-as-expected file is not up to date; only
// errors that rewriting would not fix are returned.
func upToDate(path string, content []byte) (bool, error) {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check shim %s: %w", path, err)
	}
	if !info.Mode().IsRegular() || info.Mode().Perm() != fileMode || info.Size() != int64(len(content)) {
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, nil
	}
	want := sha256.Sum256(content)
	return bytes.Equal(h.Sum(nil), want[:]), nil
}

// mkdirAll creates dir and its missing parents with mode 0755 regardless of
// the umask. Directories that already exist are left as they are.
func mkdirAll(dir string) error {
	info, err := os.Stat(dir)
	if err == nil {
		if !info.IsDir() {
			return fmt.Errorf("shim directory %s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("shim directory: %w", err)
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create shim directory: %w", err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("create shim directory: %w", err)
	}
	return nil
}

func writeAtomic(path string, content []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".libslim-*.tmp")
	if err != nil {
		return fmt.Errorf("write shim: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(content); err != nil {
		return fmt.Errorf("write shim %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(fileMode); err != nil {
		return fmt.Errorf("write shim %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write shim %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write shim %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write shim: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable. Failing to is not an error worth
// failing exec for: the file is complete either way.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
