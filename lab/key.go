package lab

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
)

// ClusterKeyPath is where the lab keeps the cluster key its routers share
// in secure mode.
func (l *Lab) ClusterKeyPath() string { return filepath.Join(StateDir, l.Name, "cluster.key") }

// WriteClusterKey makes a fresh random cluster key for the lab's routers
// (mode 0600) and returns its path.
func (l *Lab) WriteClusterKey() (string, error) {
	path := l.ClusterKeyPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
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

// StartSecureRouters writes a cluster key and starts every router in
// secure mode with it (see StartRouters).
func (l *Lab) StartSecureRouters(binary string, args ...string) error {
	return l.StartSecureRouterSet(RouterSet{Binary: binary, Args: args})
}

// StartSecureRouterSet is StartRouterSet in secure mode, with a fresh
// cluster key.
func (l *Lab) StartSecureRouterSet(set RouterSet) error {
	key, err := l.WriteClusterKey()
	if err != nil {
		return err
	}
	set.Args = append([]string{"--secure", "--key-file", key}, set.Args...)
	return l.StartRouterSet(set)
}
