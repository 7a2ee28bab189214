package launch

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	prebuilt "github.com/slimnet/slim/embed"
	"github.com/slimnet/slim/internal/shimfile"
)

// plan is what slim exec is about to execute.
type plan struct {
	path   string   // resolved program path
	argv   []string // argv, starting with CMD as given
	env    []string
	notice string // one line for stderr when the shim cannot apply
	// supervise says the supervisor is to accelerate the program in the
	// shim's place (package supervise); blocked says why the shim cannot.
	supervise bool
	blocked   string
	// dialerLink is the dialer's end of its link to the supervisor (secure
	// mode), -1 for none.
	dialerLink int
}

// socketsSupervisedEnv marks a program whose socket calls a supervisor
// handles: a nested slim exec preloads no shim under it (the supervisor
// covers what it runs, and would see the shim's calls too).
const socketsSupervisedEnv = "SLIM_SOCKETS_SUPERVISED"

// newPlan resolves CMD, decides whether the shim can be preloaded into it
// (installing the shim file if so) or the supervisor is to take it, and
// builds its environment.
func newPlan(opts Options, args, environ []string) (plan, error) {
	name := args[0]
	path, err := exec.LookPath(name)
	if err != nil {
		return plan{}, fmt.Errorf("find %s: %w", name, err)
	}
	p := plan{path: path, argv: args, dialerLink: -1}

	blocker, err := preloadBlocker(path)
	if err != nil {
		return plan{}, err
	}
	preload := withoutShims(getenv(environ, "LD_PRELOAD"))
	outerSupervisor := getenv(environ, socketsSupervisedEnv) == "1"
	switch {
	case outerSupervisor:
		// An outer slim exec's supervisor covers the program.
	case blocker.supervisable:
		p.supervise, p.blocked = true, name+" "+blocker.reason
	case blocker.reason == "":
		shim, err := shimfile.Install(opts.ShimDir, prebuilt.Shim())
		if err != nil {
			return plan{}, fmt.Errorf("install the shim (set --shim-dir or SLIM_SHIM_DIR to use another directory): %w", err)
		}
		preload = strings.TrimSpace(shim + " " + preload)
	default:
		p.notice = fmt.Sprintf("slim exec: %s %s; acceleration cannot apply, running it unaccelerated over the overlay", name, blocker.reason)
	}

	env := setenv(environ, "SLIM_ROUTER_SOCK", opts.RouterSock)
	if preload == "" {
		env = unsetenv(env, "LD_PRELOAD")
	} else {
		env = setenv(env, "LD_PRELOAD", preload)
	}
	p.env = env
	return p, nil
}

// withoutShims drops slim shims (libslim-*.so, e.g. inherited from an outer
// slim exec) from an LD_PRELOAD value, whose entries ld.so separates with
// spaces or colons.
func withoutShims(preload string) string {
	entries := strings.FieldsFunc(preload, func(r rune) bool { return r == ' ' || r == ':' })
	kept := entries[:0]
	for _, e := range entries {
		if base := filepath.Base(e); strings.HasPrefix(base, "libslim-") && strings.HasSuffix(base, ".so") {
			continue
		}
		kept = append(kept, e)
	}
	return strings.Join(kept, " ")
}

func getenv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

func unsetenv(env []string, key string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

func setenv(env []string, key, value string) []string {
	return append(unsetenv(env, key), key+"="+value)
}
