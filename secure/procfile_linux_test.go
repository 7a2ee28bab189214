package secure

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestReadProcFile: a file of several reads' worth comes whole, a /proc
// file as os reads it, a missing one is os.IsNotExist, a huge one is
// refused.
func TestReadProcFile(t *testing.T) {
	dir := t.TempDir()
	want := bytes.Repeat([]byte("0123456789abcdef"), 1000) // 16000 bytes: the buffer grows twice
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadProcFile(path); err != nil || !bytes.Equal(got, want) {
		t.Errorf("ReadProcFile of 16000 bytes: %d bytes, %v", len(got), err)
	}
	if got, err := ReadProcFile("/proc/self/cmdline"); err != nil || !bytes.HasPrefix(got, []byte(os.Args[0])) {
		t.Errorf("/proc/self/cmdline: %q, %v", got, err)
	}
	if _, err := ReadProcFile(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("a missing file: %v, want not-exist", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, procFileMax+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadProcFile(big); err == nil {
		t.Error("a file past procFileMax was read")
	}
}
