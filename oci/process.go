package oci

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/slimnet/slim/internal/glibc"
)

// preloadProcess adds the preload to an exec process file (a JSON OCI
// process) when its program can take the shim.
func preloadProcess(path string, root glibc.Root, shim string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var p process
	if err := decodeField(raw, "args", &p.Args); err != nil {
		return err
	}
	if err := decodeField(raw, "env", &p.Env); err != nil {
		return err
	}
	loader, reason, err := programLoader(root, p.Args, p.Env)
	if err == nil && reason == "" {
		reason, err = glibc.Check(root, loader)
	}
	if err != nil {
		return err
	}
	if reason != "" {
		return fmt.Errorf("%s", reason)
	}
	env, err := json.Marshal(preloadEnv(p.Env, shim))
	if err != nil {
		return err
	}
	raw["env"] = env
	out, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}
