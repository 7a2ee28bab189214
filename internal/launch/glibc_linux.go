package launch

import (
	"fmt"

	"github.com/slimnet/slim/internal/glibc"
)

// glibcBlocker says why the shim cannot load with the glibc of the loader
// at interp (too old, or no glibc beside it), as preloadBlocker does, or
// "" when it can. The loader would otherwise refuse the shim and the
// program would not start.
func glibcBlocker(interp string) (string, error) {
	reason, err := glibc.Check(glibc.HostRoot, interp)
	if err != nil {
		return "", fmt.Errorf("check the C library of its loader %s: %w", interp, err)
	}
	if reason == "" {
		return "", nil
	}
	return "cannot take the shim: " + reason, nil
}
