package router

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// What a local user may read of the router's directory (docs/secure.md,
// "What a local user can read"): it can pass through DIR to reach
// router.sock, which every program of every container needs, but not list
// it; the directory table, the state and the policy are root's. Shims
// that may not open the table by its path get a read-only descriptor of
// it from the router (TABLE), which answers containers only.
// The table's own mode is directory.Mode.
const routerDirMode = 0o711

// makeRouterDir creates DIR, or takes read and write for group and others
// away from an existing one (its search bits stay: containers reach
// router.sock through it).
func makeRouterDir(dir string) error {
	if err := os.MkdirAll(dir, routerDirMode); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if mode := st.Mode().Perm(); mode&0o066 != 0 {
		if err := os.Chmod(dir, mode&^0o066); err != nil {
			return fmt.Errorf("making %s private: %w", dir, err)
		}
	}
	return nil
}

// tableFile answers TABLE with a read-only descriptor of the directory
// table.
func (r *Router) tableFile(payload []byte) (protocol.Message, []int, error) {
	if len(payload) != 0 {
		return protocol.Message{}, nil, refuse(unix.EINVAL, "TABLE carries no payload")
	}
	fd, err := unix.Open(r.config.DirectoryPath(), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return protocol.Message{}, nil, refuse(unix.ENOENT, "TABLE: opening %s: %v", r.config.DirectoryPath(), err)
	}
	return protocol.Message{Type: protocol.TypeTableOK}, []int{fd}, nil
}
