package lab

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ClusterKeyPath is where the lab keeps the cluster key its routers share:
// it authenticates their directory exchange, and in secure mode every
// accelerated connection's SYN.
func (l *Lab) ClusterKeyPath() string { return filepath.Join(StateDir, l.Name, "cluster.key") }

// EnsureClusterKey returns the path of the lab's cluster key, making a
// fresh random one (mode 0600, readable by root only) if the lab has none
// yet. Every router set of the lab uses the same key.
func (l *Lab) EnsureClusterKey() (string, error) {
	path := l.ClusterKeyPath()
	if _, err := os.Lstat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("cluster key: %w", err)
	}
	if err := mkdirPrivate(filepath.Dir(path)); err != nil {
		return "", err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("cluster key: %w", err)
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return "", fmt.Errorf("cluster key: %w", err)
	}
	return path, nil
}

// StartSecureRouters starts every router in secure mode, with the lab's
// cluster key (see StartRouters).
func (l *Lab) StartSecureRouters(binary string, args ...string) error {
	return l.StartSecureRouterSet(RouterSet{Binary: binary, Args: args})
}

// StartSecureRouterSet is StartRouterSet in secure mode.
func (l *Lab) StartSecureRouterSet(set RouterSet) error {
	set.Args = append([]string{"--secure"}, set.Args...)
	return l.StartRouterSet(set)
}
