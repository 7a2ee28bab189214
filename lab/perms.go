package lab

import (
	"fmt"
	"os"
)

// What a local user may read of a lab (docs/secure.md, "What a local user
// can read"): its directories can be passed through by anyone, so that
// programs in containers, whatever their user, reach their router's
// socket, but only root lists them; its files (state, router
// configurations, logs, the cluster key) are root's alone.
const (
	privateDirMode  = 0o711
	privateFileMode = 0o600
)

// mkdirPrivate creates dir (and missing parents) with privateDirMode, and
// gives dir that mode if it existed with another.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, privateDirMode); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, privateDirMode); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}
