package oci

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// logf appends one line to the wrapper's log: the engines show a runtime's
// output only when it fails, and the wrapper never fails a container.
// If the log cannot be written, the line goes to stderr.
func (c Config) logf(format string, args ...any) {
	line := fmt.Sprintf("%s slim-runc[%d]: %s\n", time.Now().UTC().Format(time.RFC3339), os.Getpid(),
		strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " "))
	os.MkdirAll(filepath.Dir(c.Log), 0o755)
	f, err := os.OpenFile(c.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		os.Stderr.WriteString(line)
		return
	}
	defer f.Close()
	f.WriteString(line)
}

// shortID is how logs name a container.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
