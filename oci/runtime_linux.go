package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	prebuilt "github.com/slimnet/slim/embed"
	"github.com/slimnet/slim/internal/shimfile"
)

// configFlag, first on the command line, names the wrapper's config file
// (Docker's runtimeArgs can pass it).
const configFlag = "--slim-config="

// Main is the wrapper: it prepares the container for Slim when the
// command creates one or adds a process to one, then replaces itself
// with the real runtime, given the same arguments. It returns only if
// the real runtime cannot be started.
func Main(args []string) int {
	configPath, args := takeConfigPath(args)
	cfg, err := LoadConfig(configPath)
	if err != nil {
		// Never in a container's way: the defaults, and the error logged.
		cfg = Config{}
		cfg.setDefaults()
		cfg.logf("%v; using the defaults", err)
	}
	inv := parseInvocation(args)
	switch inv.command {
	case "create", "run":
		prepareCreate(cfg, configPath, inv)
	case "exec":
		prepareExec(cfg, inv)
	}
	runtime, err := findRuntime(cfg.Runtime)
	if err != nil {
		fmt.Fprintf(os.Stderr, "slim-runc: %v\n", err)
		return 1
	}
	err = syscall.Exec(runtime, append([]string{runtime}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "slim-runc: exec %s: %v\n", runtime, err)
	return 1
}

func takeConfigPath(args []string) (string, []string) {
	if len(args) > 0 {
		if path, ok := strings.CutPrefix(args[0], configFlag); ok {
			return path, args[1:]
		}
	}
	if path := os.Getenv(ConfigEnv); path != "" {
		return path, args
	}
	return DefaultConfigPath, args
}

// prepareCreate edits the bundle's config.json: the shim, and the hooks
// that attach the container to Slim's network, as they apply.
func prepareCreate(cfg Config, configPath string, inv invocation) {
	bundle, ok := inv.flag("bundle", "b")
	if !ok {
		bundle, _ = os.Getwd()
	}
	id := shortID(inv.lastArg())
	specPath := filepath.Join(bundle, "config.json")
	s, err := readSpec(specPath)
	if err != nil {
		cfg.logf("container %s: not prepared for Slim: %v", id, err)
		return
	}
	changed := attachHooks(s, cfg, configPath, id)
	use, problem := wantsSlim(s, cfg)
	if problem != "" {
		cfg.logf("container %s: %s", id, problem)
	}
	if use && injectShim(s, cfg, bundle, id) {
		changed = true
	}
	if !changed {
		return
	}
	if err := s.write(specPath); err != nil {
		cfg.logf("container %s: not prepared for Slim: writing %s: %v", id, specPath, err)
	}
}

// injectShim injects the shim where it can load, else logs why not.
func injectShim(s *spec, cfg Config, bundle, id string) bool {
	secure := func() bool { return routerSecure(cfg.RouterDir) }
	reason, err := injectBlocker(s, bundle, secure)
	if err == nil && reason == "" {
		var shim string
		shim, err = shimfile.Install(cfg.ShimDir(), prebuilt.Shim())
		if err == nil {
			inject(s, cfg, filepath.Base(shim))
			cfg.logf("container %s: accelerated: the shim is preloaded into its processes", id)
			return true
		}
	}
	if err != nil {
		reason = err.Error()
	}
	cfg.logf("container %s: not accelerated: %s; it uses the overlay", id, reason)
	return false
}

// attachHooks adds the hooks that attach the container to Slim's network
// when a network is configured and the runtime makes the container's
// network namespace (no path), whether or not it is accelerated: the
// hook attaches it if the engine left that namespace without interfaces.
func attachHooks(s *spec, cfg Config, configPath, id string) bool {
	own, path := s.networkNamespace()
	if cfg.Network == "" || !own || path != "" {
		return false
	}
	self, err := os.Executable()
	if err == nil {
		hookArgs := func(action string) []string {
			return []string{"slim", "oci-hook", action, configFlag + configPath}
		}
		err = errors.Join(
			s.addHook("createRuntime", hook{Path: self, Args: hookArgs("attach"), Env: hookEnv, Timeout: 60}),
			s.addHook("poststop", hook{Path: self, Args: hookArgs("detach"), Env: hookEnv, Timeout: 60}))
	}
	if err != nil {
		cfg.logf("container %s: not attached to Slim's network: %v", id, err)
		return false
	}
	return true
}

// prepareExec preloads the shim into a process added to a container the
// wrapper injected (podman exec, docker exec, kubectl exec), when the
// engine passes the process as a file (--process), as they all do.
func prepareExec(cfg Config, inv invocation) {
	processPath, ok := inv.flag("process", "p")
	id := inv.lastArg()
	if !ok || id == "" {
		return
	}
	bundle, err := bundleOf(cfg, inv.global(), id)
	if err != nil {
		return // not a container this runtime knows: the runtime says so
	}
	s, err := readSpec(filepath.Join(bundle, "config.json"))
	if err != nil || s.Annotations[annotationPreload] == "" {
		return
	}
	if err := preloadProcess(processPath, containerRoot(s, bundle), s.Annotations[annotationPreload]); err != nil {
		cfg.logf("container %s: a process added by exec is not accelerated: %v; it uses the overlay", shortID(id), err)
	}
}

// bundleOf asks the real runtime for a container's bundle directory.
func bundleOf(cfg Config, global []string, id string) (string, error) {
	runtime, err := findRuntime(cfg.Runtime)
	if err != nil {
		return "", err
	}
	out, err := exec.Command(runtime, append(append(append([]string{}, global...), "state"), id)...).Output()
	if err != nil {
		return "", err
	}
	var state struct {
		Bundle string `json:"bundle"`
	}
	if err := json.Unmarshal(out, &state); err != nil || state.Bundle == "" {
		return "", fmt.Errorf("state of %s: no bundle", id)
	}
	return state.Bundle, nil
}

// findRuntime resolves the real runtime, never this wrapper itself (a
// wrapper installed as "runc" earlier in PATH).
func findRuntime(name string) (string, error) {
	self, _ := os.Executable()
	var candidates []string
	if strings.Contains(name, "/") {
		candidates = []string{name}
	} else {
		for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
			candidates = append(candidates, filepath.Join(dir, name))
		}
		candidates = append(candidates, "/usr/sbin/"+name, "/usr/bin/"+name)
	}
	for _, c := range candidates {
		info, err := os.Stat(c)
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			continue
		}
		if selfInfo, err := os.Stat(self); err == nil && os.SameFile(info, selfInfo) {
			continue
		}
		return c, nil
	}
	return "", fmt.Errorf("the OCI runtime %q is not found (set \"runtime\" in %s)", name, DefaultConfigPath)
}
