package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// CopyExecutable copies the program at from into a temporary directory of
// t with the given mode (setuid bits included), and returns its path.
func CopyExecutable(t testing.TB, from string, mode os.FileMode) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), filepath.Base(from))
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(to, mode); err != nil {
		t.Fatal(err)
	}
	return to
}
