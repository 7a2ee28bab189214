package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/slimnet/slim/internal/strictjson"
)

// DefaultConfigPath is the wrapper's configuration file.
const DefaultConfigPath = "/etc/slim/runtime.json"

// ConfigEnv names another configuration file.
const ConfigEnv = "SLIM_RUNTIME_CONFIG"

// Which containers use Slim when nothing in the container says.
const (
	AccelerateOptIn = "opt-in" // only containers that ask
	AccelerateAll   = "all"    // every container, unless it declines
)

// Config is the wrapper's configuration (JSON; every field optional).
type Config struct {
	// Runtime is the real OCI runtime: a path, or a name looked up in
	// PATH (default runc).
	Runtime string `json:"runtime,omitempty"`
	// Accelerate is the host-wide default: "opt-in" (the default) or "all".
	Accelerate string `json:"accelerate,omitempty"`
	// RouterDir is the router's directory (its "dir"), mounted read-only
	// at /run/slim in the containers; the shim is installed in its shim/.
	RouterDir string `json:"router_dir,omitempty"`
	// Log is the file the wrapper appends its decisions to.
	Log string `json:"log,omitempty"`
	// Network, if set, is a CNI network configuration list file: a
	// container that uses Slim and whose network namespace the runtime
	// creates itself (Docker's --network none, ctr run) is attached to it
	// by hooks (ADD before it starts, DEL after it stops).
	Network string `json:"network,omitempty"`
	// CNIPath is where the hooks find CNI plugins.
	CNIPath []string `json:"cni_path,omitempty"`
	// CNICacheDir is where the hooks keep what DEL needs.
	CNICacheDir string `json:"cni_cache_dir,omitempty"`
}

// LoadConfig reads path; a missing file is the defaults.
func LoadConfig(path string) (Config, error) {
	var c Config
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return Config{}, fmt.Errorf("reading the runtime wrapper's config: %w", err)
	default:
		if err := strictjson.Unmarshal(data, &c); err != nil {
			return Config{}, fmt.Errorf("runtime wrapper config %s: %w", path, err)
		}
	}
	c.setDefaults()
	return c, c.check(path)
}

func (c *Config) setDefaults() {
	if c.Runtime == "" {
		c.Runtime = "runc"
	}
	if c.Accelerate == "" {
		c.Accelerate = AccelerateOptIn
	}
	if c.RouterDir == "" {
		c.RouterDir = "/run/slim"
	}
	if c.Log == "" {
		c.Log = "/var/log/slim-runtime.log"
	}
	if len(c.CNIPath) == 0 {
		c.CNIPath = []string{"/opt/cni/bin", "/usr/lib/cni"}
	}
	if c.CNICacheDir == "" {
		c.CNICacheDir = "/var/lib/slim/runtime-cni"
	}
}

func (c Config) check(path string) error {
	if c.Accelerate != AccelerateOptIn && c.Accelerate != AccelerateAll {
		return fmt.Errorf("runtime wrapper config %s: accelerate %q: want %q or %q", path, c.Accelerate, AccelerateOptIn, AccelerateAll)
	}
	for name, p := range map[string]string{"router_dir": c.RouterDir, "log": c.Log, "cni_cache_dir": c.CNICacheDir} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("runtime wrapper config %s: %s %q is not an absolute path", path, name, p)
		}
	}
	if c.Network != "" && !filepath.IsAbs(c.Network) {
		return fmt.Errorf("runtime wrapper config %s: network %q is not an absolute path", path, c.Network)
	}
	return nil
}

// ShimDir is where the wrapper installs the shim for containers.
func (c Config) ShimDir() string { return filepath.Join(c.RouterDir, "shim") }
