package shimfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestInstallIsContentAddressed(t *testing.T) {
	dir := t.TempDir()
	a, b := []byte("shim version A"), []byte("shim version B")

	pathA, err := Install(dir, a)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(a)
	if want := filepath.Join(dir, "libslim-"+hex.EncodeToString(sum[:])[:16]+".so"); pathA != want {
		t.Errorf("path = %s, want %s", pathA, want)
	}
	again, err := Install(dir, a)
	if err != nil || again != pathA {
		t.Errorf("second Install = %s, %v; want the same path %s", again, err, pathA)
	}
	pathB, err := Install(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	if pathB == pathA {
		t.Fatalf("different content got the same path %s", pathA)
	}
	for path, want := range map[string][]byte{pathA: a, pathB: b} {
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s holds %q (%v), want %q", path, got, err, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir has %d entries, want 2 (no temporary files left behind)", len(entries))
	}
}

func TestInstallReplacesCorruptedFile(t *testing.T) {
	dir := t.TempDir()
	content := []byte("the real shim")
	path, err := Install(dir, content)
	if err != nil {
		t.Fatal(err)
	}
	corruptions := map[string]func(){
		"same size, other bytes": func() { os.WriteFile(path, []byte("the fake shim"), 0o644) },
		"truncated":              func() { os.WriteFile(path, nil, 0o644) },
		"not readable by others": func() { os.Chmod(path, 0o600) },
		"a symlink":              func() { os.Remove(path); os.Symlink("/etc/passwd", path) },
	}
	for name, corrupt := range corruptions {
		corrupt()
		got, err := Install(dir, content)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		info, err := os.Lstat(got)
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o644 {
			t.Errorf("%s: after Install %s is %v (%v), want a 0644 regular file", name, got, info.Mode(), err)
		}
		if data, _ := os.ReadFile(got); !bytes.Equal(data, content) {
			t.Errorf("%s: Install did not restore the content, file holds %q", name, data)
		}
	}
}

func TestInstallIsWorldReadableDespiteUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	dir := filepath.Join(t.TempDir(), "run", "slim", "shim")
	path, err := Install(dir, []byte("shim"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o644 {
		t.Errorf("shim mode = %v, want 0644", perm)
	}
	for d := dir; ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o755 {
			t.Errorf("directory %s mode = %v, want 0755", d, perm)
		}
		if filepath.Base(d) == "run" {
			break
		}
	}
}

func TestInstallFailsOnFileInPlaceOfDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "notadir")
	os.WriteFile(file, nil, 0o644)
	if _, err := Install(file, []byte("shim")); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Install into a file: err = %v, want a 'not a directory' error", err)
	}
}
