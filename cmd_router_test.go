package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRouterRefusesPeersWithoutKey: slim router with peers and neither a
// cluster key nor --insecure-peers stops before it opens anything, and
// says both ways out.
func TestRouterRefusesPeersWithoutKey(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "router.json")
	text := `{"dir": "` + filepath.Join(dir, "run") + `", "overlay": "198.19.0.0/16", "host_bits": 24,
	  "hosts": [{"underlay": "198.18.0.1", "subnet": "198.19.1.0/24"}, {"underlay": "198.18.0.2", "subnet": "198.19.2.0/24"}]}`
	if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCapturingStdout(t, "router", "--config", config)
	if code != 1 || !strings.Contains(stderr, "no cluster key") || !strings.Contains(stderr, "--key-file") || !strings.Contains(stderr, "--insecure-peers") {
		t.Errorf("exit %d, stderr %q; want exit 1 naming --key-file and --insecure-peers", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "run")); err == nil {
		t.Error("the refused router created its directory")
	}
}
