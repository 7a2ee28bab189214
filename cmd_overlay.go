package main

import (
	"fmt"
	"os"

	"github.com/slimnet/slim/router"
)

func init() {
	register(&command{
		name:    "overlay",
		summary: "create or remove this host's overlay devices (the router keeps them)",
		run:     runOverlay,
	})
}

const overlayDescription = `
Sets up or removes this host's overlay, from the router's configuration
file, in the network namespace slim runs in. Needs root.

Subcommands:
  up --config FILE            create or correct the bridge (slim0, the gateway of
                              this host's subnet), the VXLAN device (slim-vx), each
                              peer's route and static neighbour and FDB entries,
                              and turn on IPv4 forwarding; prints what it changed
  down --config FILE [--force]
                              remove slim0 and slim-vx with their routes and entries

'slim router' does what 'up' does at start and checks it every 10 s, putting
back what is missing; a clean stop of the router leaves the devices for the
containers still running. 'down' refuses while the router runs (stop it
first) and while containers are attached to slim0 (unless --force: they
lose their overlay network). IPv4 forwarding is left as it is.`

func runOverlay(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fs := newFlagSet("overlay", "up|down --config FILE [--force]", overlayDescription)
		return parseFlags(fs, []string{"--help"})
	}
	switch args[0] {
	case "up":
		return runOverlayUp(args[1:])
	case "down":
		return runOverlayDown(args[1:])
	default:
		return fmt.Errorf("%w: unknown overlay subcommand %q (want up or down)", errUsage, args[0])
	}
}

func runOverlayUp(args []string) error {
	fs := newFlagSet("overlay up", "--config FILE", "Creates or corrects this host's overlay devices from the router's configuration.")
	configPath := fs.String("config", "", "`FILE` with the router's configuration (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	config, err := overlayConfig(fs, *configPath)
	if err != nil {
		return err
	}
	changes, err := router.EnsureOverlay(config)
	for _, c := range changes {
		fmt.Fprintln(os.Stdout, c)
	}
	if err == nil && len(changes) == 0 {
		fmt.Fprintln(os.Stdout, "the overlay is as configured; nothing changed")
	}
	return err
}

func runOverlayDown(args []string) error {
	fs := newFlagSet("overlay down", "--config FILE [--force]", "Removes this host's overlay devices (slim0, slim-vx) and what goes through them.")
	configPath := fs.String("config", "", "`FILE` with the router's configuration (required)")
	force := fs.Bool("force", false, "remove them even though containers are attached to slim0 (they lose their overlay network)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	config, err := overlayConfig(fs, *configPath)
	if err != nil {
		return err
	}
	removed, err := router.RemoveOverlay(config, *force)
	for _, name := range removed {
		fmt.Fprintf(os.Stdout, "removed %s\n", name)
	}
	if err == nil && len(removed) == 0 {
		fmt.Fprintln(os.Stdout, "no overlay devices here; nothing removed")
	}
	return err
}

func overlayConfig(fs interface{ NArg() int }, path string) (router.Config, error) {
	if fs.NArg() > 0 {
		return router.Config{}, fmt.Errorf("%w: unexpected arguments", errUsage)
	}
	if path == "" {
		return router.Config{}, fmt.Errorf("%w: --config is required", errUsage)
	}
	return router.LoadConfig(path)
}
