package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// spec is a container's OCI configuration (config.json), read whole so
// that writing it back keeps every field this package does not know.
type spec struct {
	raw map[string]json.RawMessage
	// What the wrapper reads and changes; written back into raw.
	Process *process `json:"-"`
	Root    struct {
		Path     string `json:"path"`
		Readonly bool   `json:"readonly"`
	}
	Mounts      []mount           `json:"-"`
	Annotations map[string]string `json:"-"`
	Namespaces  []namespace       `json:"-"`
	processRaw  map[string]json.RawMessage
}

type process struct {
	Args []string
	Env  []string
}

type mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

type namespace struct {
	Type string `json:"type"`
	Path string `json:"path,omitempty"`
}

func readSpec(path string) (*spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s := &spec{}
	if err := json.Unmarshal(data, &s.raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.decode(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func (s *spec) decode() error {
	if err := decodeField(s.raw, "root", &s.Root); err != nil {
		return err
	}
	if err := decodeField(s.raw, "mounts", &s.Mounts); err != nil {
		return err
	}
	if err := decodeField(s.raw, "annotations", &s.Annotations); err != nil {
		return err
	}
	var linux struct {
		Namespaces []namespace `json:"namespaces"`
	}
	if err := decodeField(s.raw, "linux", &linux); err != nil {
		return err
	}
	s.Namespaces = linux.Namespaces
	if _, ok := s.raw["process"]; !ok {
		return nil
	}
	if err := decodeField(s.raw, "process", &s.processRaw); err != nil {
		return err
	}
	s.Process = &process{}
	if err := decodeField(s.processRaw, "args", &s.Process.Args); err != nil {
		return err
	}
	return decodeField(s.processRaw, "env", &s.Process.Env)
}

func decodeField(raw map[string]json.RawMessage, name string, into any) error {
	value, ok := raw[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(value, into); err != nil {
		return fmt.Errorf("field %q: %w", name, err)
	}
	return nil
}

// write saves the spec atomically (a temporary file renamed over path).
func (s *spec) write(path string) error {
	if err := s.encode(); err != nil {
		return err
	}
	data, err := json.Marshal(s.raw)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config.json.slim-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func (s *spec) encode() error {
	set := func(raw map[string]json.RawMessage, name string, value any) error {
		data, err := json.Marshal(value)
		raw[name] = data
		return err
	}
	if s.Mounts != nil {
		if err := set(s.raw, "mounts", s.Mounts); err != nil {
			return err
		}
	}
	if s.Annotations != nil {
		if err := set(s.raw, "annotations", s.Annotations); err != nil {
			return err
		}
	}
	if s.Process == nil {
		return nil
	}
	if err := set(s.processRaw, "env", s.Process.Env); err != nil {
		return err
	}
	return set(s.raw, "process", s.processRaw)
}

// rootDir is the container's root directory on the host.
func (s *spec) rootDir(bundle string) string {
	if filepath.IsAbs(s.Root.Path) {
		return s.Root.Path
	}
	return filepath.Join(bundle, s.Root.Path)
}

// networkNamespace says whether the container has a network namespace of
// its own, and its path when it joins an existing one.
func (s *spec) networkNamespace() (own bool, path string) {
	for _, ns := range s.Namespaces {
		if ns.Type == "network" {
			return true, ns.Path
		}
	}
	return false, ""
}

// hooks adds hook commands to the spec's hooks of the given kind
// ("createRuntime", "poststop").
func (s *spec) addHook(kind string, h hook) error {
	var hooks map[string][]json.RawMessage
	if err := decodeField(s.raw, "hooks", &hooks); err != nil {
		return err
	}
	if hooks == nil {
		hooks = map[string][]json.RawMessage{}
	}
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	hooks[kind] = append(hooks[kind], data)
	data, err = json.Marshal(hooks)
	s.raw["hooks"] = data
	return err
}

type hook struct {
	Path    string   `json:"path"`
	Args    []string `json:"args,omitempty"`
	Env     []string `json:"env,omitempty"`
	Timeout int      `json:"timeout,omitempty"`
}

// hookEnv is the hooks' environment (runc gives a hook nothing else): a
// plugin chained after slim's may need PATH.
var hookEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

func getenv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v, true
		}
	}
	return "", false
}

func setenv(env []string, key, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}
