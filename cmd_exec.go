package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slimnet/slim/internal/launch"
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

Static binaries, binaries for another loader than glibc's (musl) and Go
programs of any linking (they make system calls without libc) cannot be
preloaded: slim puts them under a seccomp filter instead, whose supervisor
accelerates their sockets the way the shim would (docs/datapath.md, "The
supervised path"). Setuid/setgid binaries and binaries with file
capabilities cannot be either: slim says so in one line on stderr and runs
them unaccelerated over the overlay, as it does when the kernel lacks what
the supervisor needs. Scripts are fine: their interpreter gets the shim.

SLIM_SHIM_DIR sets the shim directory when --shim-dir is not given.
SLIM_DEBUG=1 makes the shim say on stderr when it is loaded.`

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
	opts := launchOptions(*shimDir)
	switch {
	case set["router"]:
		opts.RouterSock = *routerSock
	case set["router-dir"]:
		opts.RouterSock = filepath.Join(*routerDir, routerSockName)
	default:
		opts.RouterSock = envOr("SLIM_ROUTER_SOCK", filepath.Join(defaultRouterDir, routerSockName))
	}
	return launch.Run(opts, fs.Args())
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
