package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/slimnet/slim/embed"
	"github.com/slimnet/slim/internal/shimfile"
)

const (
	defaultRouterDir = "/run/slim"
	routerSockName   = "router.sock"
)

func init() {
	register(&command{
		name:    "exec",
		summary: "run a program with the slim shim preloaded",
		run:     runExec,
	})
}

const execDescription = `
Runs CMD in place of slim (same PID) with the slim shim preloaded, so that
its TCP sockets can be accelerated through the host's router.

The embedded shim is written once to a content-addressed file,
DIR/libslim-<digest>.so (--shim-dir), verified and rewritten if it was
altered. LD_PRELOAD gets the shim prepended; SLIM_ROUTER_SOCK tells it
where the router listens (--router, else --router-dir/router.sock, else an
inherited SLIM_ROUTER_SOCK, else /run/slim/router.sock).

Static binaries, setuid/setgid binaries, binaries with file capabilities,
and binaries for another loader than glibc's cannot be preloaded: slim
says so in one line on stderr and runs them unaccelerated over the overlay.
Scripts are fine: their interpreter gets the shim.

SLIM_SHIM_DIR sets the shim directory when --shim-dir is not given.
SLIM_DEBUG=1 makes the shim say on stderr when it is loaded.`

// execOptions are the settings of slim exec after flags and environment.
type execOptions struct {
	shimDir    string
	routerSock string
}

func runExec(args []string) error {
	fs := newFlagSet("exec", "[--router-dir DIR | --router PATH] [--shim-dir DIR] [--] CMD [ARGS...]", execDescription)
	routerDir := fs.String("router-dir", defaultRouterDir, "`DIR` holding the router's socket ("+routerSockName+")")
	routerSock := fs.String("router", "", "`PATH` of the router's socket (overrides --router-dir)")
	shimDir := fs.String("shim-dir", envOr("SLIM_SHIM_DIR", shimfile.DefaultDir), "`DIR` to extract the shim into ($SLIM_SHIM_DIR)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: no command to run", errUsage)
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	opts := execOptions{shimDir: *shimDir}
	switch {
	case set["router"]:
		opts.routerSock = *routerSock
	case set["router-dir"]:
		opts.routerSock = filepath.Join(*routerDir, routerSockName)
	default:
		opts.routerSock = envOr("SLIM_ROUTER_SOCK", filepath.Join(defaultRouterDir, routerSockName))
	}

	plan, err := planExec(opts, fs.Args(), os.Environ())
	if err != nil {
		return err
	}
	if plan.notice != "" {
		fmt.Fprintln(os.Stderr, plan.notice)
	}
	// One HELLO decides both: a secure router wants the program guarded,
	// then enrolls it (after checking the guard); any other needs neither.
	secureRouter := routerSecure(opts.routerSock)
	protection, err := guardIoctls(secureRouter, &plan)
	if err != nil {
		return err
	}
	if secureRouter {
		enroll(opts.routerSock, protection)
	}
	if protection != nil {
		protection.Close()
	}
	return execProgram(plan)
}

// execPlan is what slim exec is about to execute.
type execPlan struct {
	path   string   // resolved program path
	argv   []string // argv, starting with CMD as given
	env    []string
	notice string // one line for stderr when the shim cannot apply
}

// planExec resolves CMD, decides whether the shim can be preloaded into it
// (installing the shim file if so) and builds its environment.
func planExec(opts execOptions, args, environ []string) (execPlan, error) {
	name := args[0]
	path, err := exec.LookPath(name)
	if err != nil {
		return execPlan{}, fmt.Errorf("find %s: %w", name, err)
	}
	plan := execPlan{path: path, argv: args}

	blocker, err := preloadBlocker(path)
	if err != nil {
		return execPlan{}, err
	}
	preload := withoutShims(getenv(environ, "LD_PRELOAD"))
	if blocker == "" {
		shim, err := shimfile.Install(opts.shimDir, embed.Shim())
		if err != nil {
			return execPlan{}, fmt.Errorf("install the shim (set --shim-dir or SLIM_SHIM_DIR to use another directory): %w", err)
		}
		preload = strings.TrimSpace(shim + " " + preload)
	} else {
		plan.notice = fmt.Sprintf("slim exec: %s %s; acceleration cannot apply, running it unaccelerated over the overlay", name, blocker)
	}

	env := setenv(environ, "SLIM_ROUTER_SOCK", opts.routerSock)
	if preload == "" {
		env = unsetenv(env, "LD_PRELOAD")
	} else {
		env = setenv(env, "LD_PRELOAD", preload)
	}
	plan.env = env
	return plan, nil
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

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
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
