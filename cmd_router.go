package main

import (
	"errors"
	"fmt"
)

func init() {
	register(&command{
		name:    "router",
		summary: "run the per-host router that hands containers host TCP sockets (not implemented yet)",
		run:     runRouter,
	})
}

const routerDescription = `
Runs the per-host router. Containers started with 'slim exec' reach it over
a unix socket, DIR/router.sock; for each TCP connect or listen the shim
forwards, the router creates the matching socket in the host's network
namespace and passes it back, so the container's traffic skips the overlay.
The overlay keeps addressing and carries everything that is not
accelerated.

With --secure the router also attaches slim's eBPF programs to the
containers' cgroups, so that accelerated connections obey the same policy
as the overlay (needs cgroup v2 and cgroup sock_addr BPF programs).

Not implemented yet in this build: it arrives with the data-path work.`

var errRouterNotImplemented = errors.New("the router is not implemented yet in this build (it arrives with the data-path work)")

func runRouter(args []string) error {
	fs := newFlagSet("router", "[--dir DIR] [--secure]", routerDescription)
	fs.String("dir", defaultRouterDir, "`DIR` to create the router's unix socket ("+routerSockName+") in")
	fs.Bool("secure", false, "enforce policy on accelerated connections with eBPF (secure mode)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return errRouterNotImplemented
}
