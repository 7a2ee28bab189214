package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/charmbracelet/x/term"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/ui"
)

func init() {
	register(&command{
		name:    "top",
		summary: "watch the router's accelerated connections live",
		run:     runTop,
	})
}

const topDescription = `
Shows, refreshed every second, what a router is doing: its health and
peers, the accelerated connections of its containers (overlay source and
destination, age, bytes each way, rate and RTT, read from the kernel with
sock_diag), the accelerated sockets each container has open, fallbacks
and connect setup times reported by shims, and policy rules with hits.
It reads the router's control API (docs/control.md), which only root (or
the router's --control-group) may use.

Keys: ? help, q quit, s/S sort column, r reverse, / filter by container,
f cycle containers, arrows and PgUp/PgDn scroll. If the router cannot be
reached, slim top says so and keeps retrying.

With --once it prints one snapshot as text and exits; with --json it
prints the snapshot as the API's JSON, for scripts.`

// controlTarget are the flags that select a router's control socket.
type controlTarget struct {
	control, routerDir, labName, host *string
}

func controlFlags(fs *flag.FlagSet) controlTarget {
	return controlTarget{
		control:   fs.String("control", control.DefaultSocket, "`PATH` of the router's control socket"),
		routerDir: fs.String("router-dir", "", "`DIR` of the router (its control socket is DIR/"+control.SocketName+")"),
		labName:   fs.String("lab", "", "lab `NAME`: watch the router of --host in that lab"),
		host:      fs.String("host", "h1", "lab host whose router to watch (with --lab)"),
	}
}

// path resolves the control socket from the flags that were given.
func (t controlTarget) path(fs *flag.FlagSet) (string, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	given := 0
	for _, name := range []string{"control", "router-dir", "lab"} {
		if set[name] {
			given++
		}
	}
	if given > 1 {
		return "", fmt.Errorf("%w: give one of --control, --router-dir and --lab", errUsage)
	}
	switch {
	case set["router-dir"]:
		return filepath.Join(*t.routerDir, control.SocketName), nil
	case set["lab"]:
		l, err := lab.Load(*t.labName)
		if err != nil {
			return "", err
		}
		if _, err := l.Node(*t.host); err != nil {
			return "", err
		}
		return filepath.Join(l.RouterDir(*t.host), control.SocketName), nil
	}
	return *t.control, nil
}

func runTop(args []string) error {
	fs := newFlagSet("top", "[--control PATH | --router-dir DIR | --lab NAME [--host H]] [--once | --json]", topDescription)
	target := controlFlags(fs)
	once := fs.Bool("once", false, "print one snapshot as text and exit")
	asJSON := fs.Bool("json", false, "print one snapshot as JSON and exit")
	width := fs.Int("width", 100, "width of the --once text")
	interval := fs.Duration("interval", time.Second, "refresh interval (at least 100ms)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	path, err := target.path(fs)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *once || *asJSON {
		fetchCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		snap, err := control.Fetch(fetchCtx, path)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(snap)
		}
		_, err = fmt.Print(ui.RenderOnce(snap, *width))
		return err
	}
	if !term.IsTerminal(os.Stdin.Fd()) || !term.IsTerminal(os.Stdout.Fd()) {
		return errors.New("the dashboard needs a terminal; use --once or --json for one snapshot")
	}
	const retry = time.Second
	watcher := &control.Watcher{Path: path, Interval: max(*interval, control.MinInterval), Retry: retry}
	defer watcher.Close()
	return ui.Run(ctx, ui.Options{Source: watcher, Target: path, Retry: retry})
}
