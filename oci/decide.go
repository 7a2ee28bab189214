package oci

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/slimnet/slim/internal/glibc"
)

// What a container says about Slim.
const (
	// AnnotationAccelerate ("true" or "false") decides for the container.
	AnnotationAccelerate = "io.slim.accelerate"
	// EnvAccelerate, in the container's environment ("1" or "0"), decides
	// when the annotation does not (Docker passes no annotations).
	EnvAccelerate = "SLIM_ACCELERATE"
	// annotationPreload is what the wrapper writes: the shim's path in a
	// container it injected, for the processes `exec` adds later.
	annotationPreload = "io.slim.preload"
)

// ContainerDir is where the router's directory appears in containers.
const ContainerDir = "/run/slim"

// wantsSlim says whether the container uses Slim, and a problem with what
// it says (a value that is neither yes nor no: the default applies).
func wantsSlim(s *spec, cfg Config) (bool, string) {
	if v, ok := s.Annotations[AnnotationAccelerate]; ok {
		if yes, valid := parseYesNo(v); valid {
			return yes, ""
		}
		return cfg.Accelerate == AccelerateAll, fmt.Sprintf("annotation %s=%q is neither true nor false; the host's default (%s) applies", AnnotationAccelerate, v, cfg.Accelerate)
	}
	if s.Process != nil {
		if v, ok := getenv(s.Process.Env, EnvAccelerate); ok {
			if yes, valid := parseYesNo(v); valid {
				return yes, ""
			}
			return cfg.Accelerate == AccelerateAll, fmt.Sprintf("%s=%q is neither 1 nor 0; the host's default (%s) applies", EnvAccelerate, v, cfg.Accelerate)
		}
	}
	return cfg.Accelerate == AccelerateAll, ""
}

func parseYesNo(v string) (yes, valid bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true, true
	case "0", "false", "no", "off":
		return false, true
	}
	return false, false
}

// injectBlocker says why the shim cannot be injected into the container,
// or "" when it can.
func injectBlocker(s *spec, bundle string, secureRouter func() bool) (string, error) {
	if s.Process == nil {
		return "it has no process", nil
	}
	if own, _ := s.networkNamespace(); !own {
		return "it shares the host's network namespace (Slim accelerates containers on its overlay only)", nil
	}
	if secureRouter() {
		return "the router runs in secure mode, where only programs started by slim exec under its ioctl guard are enrolled (docs/oci.md)", nil
	}
	root := containerRoot(s, bundle)
	if _, host, err := root.Resolve(ContainerDir); err == nil {
		if info, err := os.Stat(host); host != "" && (err != nil || !info.IsDir()) {
			return fmt.Sprintf("its image has %s, and not as a directory", ContainerDir), nil
		}
	}
	loader, reason, err := programLoader(root, s.Process.Args, s.Process.Env)
	if err != nil || reason != "" {
		return reason, err
	}
	reason, err = glibc.Check(root, loader)
	if reason != "" {
		reason = "the shim cannot load into its programs: " + reason
	}
	return reason, err
}

// containerRoot is the container's file system as its processes will
// see it: the root directory and the spec's mounts (binds show their
// source, any other file system is empty).
func containerRoot(s *spec, bundle string) glibc.Root {
	root := glibc.Root{Dir: s.rootDir(bundle)}
	for _, m := range s.Mounts {
		if !path.IsAbs(m.Destination) {
			continue
		}
		mount := glibc.Mount{Destination: m.Destination}
		if m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind") {
			mount.Source = m.Source
		}
		root.Mounts = append(root.Mounts, mount)
	}
	return root
}

// inject mounts the router's directory (with the shim in it) read-only
// at ContainerDir and preloads the shim into the container's process.
func inject(s *spec, cfg Config, shimName string) {
	s.Mounts = append(s.Mounts, mount{
		Destination: ContainerDir,
		Type:        "bind",
		Source:      cfg.RouterDir,
		Options:     []string{"bind", "ro", "nosuid", "nodev"},
	})
	shim := path.Join(ContainerDir, "shim", shimName)
	s.Process.Env = preloadEnv(s.Process.Env, shim)
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[annotationPreload] = shim
}

// preloadEnv puts the shim first in LD_PRELOAD (dropping other slim
// shims) and names the router's socket.
func preloadEnv(env []string, shim string) []string {
	preload, _ := getenv(env, "LD_PRELOAD")
	entries := strings.FieldsFunc(preload, func(r rune) bool { return r == ' ' || r == ':' })
	kept := []string{shim}
	for _, e := range entries {
		base := path.Base(e)
		if !(strings.HasPrefix(base, "libslim-") && strings.HasSuffix(base, ".so")) {
			kept = append(kept, e)
		}
	}
	env = setenv(env, "LD_PRELOAD", strings.Join(kept, " "))
	return setenv(env, "SLIM_ROUTER_SOCK", path.Join(ContainerDir, "router.sock"))
}
