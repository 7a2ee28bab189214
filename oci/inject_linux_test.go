package oci

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bundle writes a bundle whose rootfs is the host's own /usr (bound like
// the e2e images) and returns its directory.
func bundle(t *testing.T, process map[string]any, extra map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"usr", "etc", "run"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		os.Symlink("usr/"+l, filepath.Join(rootfs, l))
	}
	spec := map[string]any{
		"ociVersion": "1.0.2",
		"root":       map[string]any{"path": "rootfs"},
		"process":    process,
		"mounts":     []any{map[string]any{"destination": "/usr", "type": "bind", "source": "/usr", "options": []string{"rbind", "ro"}}},
		"linux":      map[string]any{"namespaces": []any{map[string]any{"type": "network"}, map[string]any{"type": "mount"}}},
		"x-unknown":  map[string]any{"kept": true},
	}
	for k, v := range extra {
		spec[k] = v
	}
	data, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func shellProcess(env ...string) map[string]any {
	return map[string]any{"args": []string{"sh", "-c", "true"}, "env": append([]string{"PATH=/usr/bin:/bin"}, env...), "cwd": "/", "user": map[string]any{"uid": 0, "gid": 0}}
}

func testConfig(t *testing.T, accelerate string) Config {
	cfg := Config{Accelerate: accelerate, RouterDir: t.TempDir(), Log: filepath.Join(t.TempDir(), "runtime.log")}
	cfg.setDefaults()
	return cfg
}

func readBack(t *testing.T, dir string) (*spec, map[string]json.RawMessage) {
	t.Helper()
	s, err := readSpec(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s, s.raw
}

func logOf(cfg Config) string {
	data, _ := os.ReadFile(cfg.Log)
	return string(data)
}

func TestCreateInjectsOptedInGlibcContainer(t *testing.T) {
	dir := bundle(t, shellProcess("LD_PRELOAD=/opt/mine.so"), map[string]any{"annotations": map[string]string{AnnotationAccelerate: "true"}})
	cfg := testConfig(t, AccelerateOptIn)
	prepareCreate(cfg, "/etc/slim/runtime.json", parseInvocation([]string{"create", "--bundle", dir, "c1"}))
	s, raw := readBack(t, dir)
	preload, _ := getenv(s.Process.Env, "LD_PRELOAD")
	if !strings.HasPrefix(preload, "/run/slim/shim/libslim-") || !strings.HasSuffix(preload, ".so /opt/mine.so") {
		t.Errorf("LD_PRELOAD = %q", preload)
	}
	if sock, _ := getenv(s.Process.Env, "SLIM_ROUTER_SOCK"); sock != "/run/slim/router.sock" {
		t.Errorf("SLIM_ROUTER_SOCK = %q", sock)
	}
	last := s.Mounts[len(s.Mounts)-1]
	if last.Destination != ContainerDir || last.Source != cfg.RouterDir || strings.Join(last.Options, ",") != "bind,ro,nosuid,nodev" {
		t.Errorf("mount = %+v", last)
	}
	if _, err := os.Stat(filepath.Join(cfg.RouterDir, "shim", filepath.Base(strings.Fields(preload)[0]))); err != nil {
		t.Errorf("shim not installed: %v", err)
	}
	if string(raw["x-unknown"]) != `{"kept":true}` || !strings.Contains(string(raw["process"]), `"cwd":"/"`) {
		t.Errorf("fields the wrapper does not know were lost: %s %s", raw["x-unknown"], raw["process"])
	}
	if _, ok := raw["hooks"]; ok {
		t.Errorf("hooks added without a network configured")
	}
	if !strings.Contains(logOf(cfg), "container c1: accelerated") {
		t.Errorf("log: %q", logOf(cfg))
	}
}

func TestCreateLeavesOtherContainersAlone(t *testing.T) {
	cases := map[string]struct {
		accelerate string
		process    map[string]any
		extra      map[string]any
		logged     string
	}{
		"not opted in":         {AccelerateOptIn, shellProcess(), nil, ""},
		"opted out":            {AccelerateAll, shellProcess("SLIM_ACCELERATE=0"), nil, ""},
		"annotation beats env": {AccelerateOptIn, shellProcess("SLIM_ACCELERATE=1"), map[string]any{"annotations": map[string]string{AnnotationAccelerate: "false"}}, ""},
		"host network": {AccelerateAll, shellProcess(), map[string]any{"linux": map[string]any{"namespaces": []any{map[string]any{"type": "mount"}}}},
			"not accelerated: it shares the host's network namespace"},
		"program missing": {AccelerateAll, map[string]any{"args": []string{"/no/such/program"}, "env": []string{}}, nil,
			"not accelerated: its program /no/such/program is not in the image"},
		"image without glibc": {AccelerateAll, shellProcess(), map[string]any{"mounts": []any{}},
			"not accelerated: its program sh is not in the image"},
		"bad annotation": {AccelerateOptIn, shellProcess(), map[string]any{"annotations": map[string]string{AnnotationAccelerate: "maybe"}},
			`annotation io.slim.accelerate="maybe" is neither true nor false; the host's default (opt-in) applies`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := bundle(t, c.process, c.extra)
			before, _ := os.ReadFile(filepath.Join(dir, "config.json"))
			cfg := testConfig(t, c.accelerate)
			prepareCreate(cfg, "/etc/slim/runtime.json", parseInvocation([]string{"create", "-b", dir, "c1"}))
			after, _ := os.ReadFile(filepath.Join(dir, "config.json"))
			if string(before) != string(after) {
				t.Errorf("config.json changed:\n%s", after)
			}
			if log := logOf(cfg); (c.logged == "") != (log == "") || !strings.Contains(log, c.logged) || strings.Count(log, "\n") > 1 {
				t.Errorf("log %q, want one line with %q", log, c.logged)
			}
		})
	}
}

func TestCreateStaticAndMuslPrograms(t *testing.T) {
	dir := bundle(t, shellProcess(), map[string]any{"annotations": map[string]string{AnnotationAccelerate: "true"}})
	rootfs := filepath.Join(dir, "rootfs")
	// A program whose loader is musl's, in the image itself.
	musl := filepath.Join(rootfs, "etc", "app")
	data, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "/lib64/ld-linux-x86-64.so.2", "/lib/ld-musl-x86_64.so.1\x00\x00\x00", 1))
	if err := os.WriteFile(musl, data, 0o755); err != nil {
		t.Fatal(err)
	}
	s, _ := readSpec(filepath.Join(dir, "config.json"))
	s.Process.Args = []string{"/etc/app"}
	reason, err := injectBlocker(s, dir, func() bool { return false })
	if err != nil || reason != "its program /etc/app does not use the glibc loader (its loader is /lib/ld-musl-x86_64.so.1)" {
		t.Errorf("musl program: %q, %v", reason, err)
	}
	// A secure router: never injected.
	s.Process.Args = []string{"sh"}
	if reason, _ := injectBlocker(s, dir, func() bool { return true }); !strings.Contains(reason, "secure mode") {
		t.Errorf("secure router: %q", reason)
	}
	// A script: its interpreter decides.
	os.WriteFile(filepath.Join(rootfs, "etc", "script"), []byte("#!/bin/sh\ntrue\n"), 0o755)
	s.Process.Args = []string{"/etc/script"}
	if reason, err := injectBlocker(s, dir, func() bool { return false }); reason != "" || err != nil {
		t.Errorf("script: %q, %v", reason, err)
	}
	// /run/slim in the image as a file: runc could not mount over it.
	os.WriteFile(filepath.Join(rootfs, "run", "slim"), nil, 0o644)
	if reason, _ := injectBlocker(s, dir, func() bool { return false }); !strings.Contains(reason, "/run/slim, and not as a directory") {
		t.Errorf("/run/slim a file: %q", reason)
	}
}

func TestCreateAddsAttachHooks(t *testing.T) {
	dir := bundle(t, shellProcess(), map[string]any{"hooks": map[string]any{"prestart": []any{map[string]any{"path": "/usr/bin/docker-hook"}}}})
	cfg := testConfig(t, AccelerateOptIn)
	cfg.Network = "/etc/cni/net.d/10-slim.conflist"
	prepareCreate(cfg, "/etc/slim/runtime.json", parseInvocation([]string{"create", "--bundle=" + dir, "c1"}))
	_, raw := readBack(t, dir)
	var hooks map[string][]hook
	if err := json.Unmarshal(raw["hooks"], &hooks); err != nil {
		t.Fatal(err)
	}
	if len(hooks["prestart"]) != 1 || len(hooks["createRuntime"]) != 1 || len(hooks["poststop"]) != 1 {
		t.Fatalf("hooks = %+v", hooks)
	}
	attach := hooks["createRuntime"][0]
	if strings.Join(attach.Args, " ") != "slim oci-hook attach --slim-config=/etc/slim/runtime.json" || !filepath.IsAbs(attach.Path) {
		t.Errorf("attach hook = %+v", attach)
	}
	// A namespace the engine made (podman, CRI): no hooks.
	dir = bundle(t, shellProcess(), map[string]any{"linux": map[string]any{"namespaces": []any{map[string]any{"type": "network", "path": "/run/netns/x"}}}})
	prepareCreate(cfg, "/etc/slim/runtime.json", parseInvocation([]string{"create", "--bundle=" + dir, "c2"}))
	if _, raw := readBack(t, dir); raw["hooks"] != nil {
		t.Errorf("hooks for a namespace the engine made: %s", raw["hooks"])
	}
}

func TestPreloadProcess(t *testing.T) {
	dir := bundle(t, shellProcess(), nil)
	s, _ := readSpec(filepath.Join(dir, "config.json"))
	process := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(process, []byte(`{"args":["curl","-s"],"env":["PATH=/usr/bin"],"terminal":false}`), 0o600)
	if err := preloadProcess(process, containerRoot(s, dir), "/run/slim/shim/libslim-0.so"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(process)
	if !strings.Contains(string(data), `"LD_PRELOAD=/run/slim/shim/libslim-0.so"`) || !strings.Contains(string(data), `"terminal":false`) {
		t.Errorf("process = %s", data)
	}
	os.WriteFile(process, []byte(`{"args":["/nope"],"env":[]}`), 0o600)
	if err := preloadProcess(process, containerRoot(s, dir), "/run/slim/shim/libslim-0.so"); err == nil || !strings.Contains(err.Error(), "not in the image") {
		t.Errorf("missing program: %v", err)
	}
}

func TestLoadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runtime.json")
	if cfg, err := LoadConfig(path); err != nil || cfg.Runtime != "runc" || cfg.Accelerate != AccelerateOptIn || cfg.RouterDir != "/run/slim" {
		t.Errorf("missing file: %+v, %v", cfg, err)
	}
	for content, want := range map[string]string{
		`{"accelerate": "some"}`:     `accelerate "some": want "opt-in" or "all"`,
		`{"acelerate": "all"}`:       `unknown field "acelerate"`,
		`{"router_dir": "run/slim"}`: `router_dir "run/slim" is not an absolute path`,
	} {
		os.WriteFile(path, []byte(content), 0o644)
		if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", content, err, want)
		}
	}
}
