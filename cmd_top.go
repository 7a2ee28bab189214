package main

import (
	"errors"
	"fmt"
	"path/filepath"
)

func init() {
	register(&command{
		name:    "top",
		summary: "watch the router's accelerated connections live (not implemented yet)",
		run:     runTop,
	})
}

const topDescription = `
Shows, refreshed every second, what the router at PATH is doing: the
containers it serves, their accelerated connections and listeners, the
connections that fell back to the overlay and why, and throughput.
With --once it prints one snapshot and exits, for scripts and tests.

Not implemented yet in this build: it arrives with the data-path work,
which gives it a router to watch.`

var errTopNotImplemented = errors.New("top is not implemented yet in this build (it arrives with the data-path work, which gives it a router to watch)")

func runTop(args []string) error {
	fs := newFlagSet("top", "[--router PATH] [--once]", topDescription)
	fs.String("router", filepath.Join(defaultRouterDir, routerSockName), "`PATH` of the router's unix socket")
	fs.Bool("once", false, "print one snapshot and exit instead of refreshing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return errTopNotImplemented
}
