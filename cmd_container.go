package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/slimnet/slim/control"
)

func init() {
	register(&command{
		name:    "container",
		summary: "register, unregister and list the containers a router serves",
		run:     runContainer,
	})
}

const containerDescription = `
Registers containers with a running router and unregisters them, through
its control API (docs/control.md; root or the router's --control-group).
The slim CNI plugin does this for every container it attaches (docs/cni.md);
use these for containers set up by hand.

Subcommands:
  add NAME --netns PATH --addr ADDR   serve the processes of network namespace
                                      PATH (such as /run/netns/NAME or
                                      /proc/PID/ns/net) as container NAME, whose
                                      overlay address is ADDR
  del NAME                            stop serving it and reset its accelerated
                                      connections and listeners
  list [--json]                       the registered containers

A registration is saved in the router's directory (DIR/containers/NAME.json)
and outlives a restart of the router. The router holds the namespace open
while the container is registered. Each subcommand takes --control PATH,
--router-dir DIR or --lab NAME [--host H] to select the router.`

func runContainer(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fs := newFlagSet("container", "add|del|list [flags] [NAME]", containerDescription)
		return parseFlags(fs, []string{"--help"})
	}
	switch args[0] {
	case "add":
		return runContainerAdd(args[1:])
	case "del", "delete", "rm":
		return runContainerDel(args[1:])
	case "list", "ls":
		return runContainerList(args[1:])
	default:
		return fmt.Errorf("%w: unknown container subcommand %q (want add, del or list)", errUsage, args[0])
	}
}

func runContainerAdd(args []string) error {
	fs := newFlagSet("container add", "NAME --netns PATH --addr ADDR "+policyTargetSynopsis, "Registers container NAME with the router.")
	target := controlFlags(fs)
	netns := fs.String("netns", "", "`PATH` of the container's network namespace (required)")
	addr := fs.String("addr", "", "the container's overlay address `ADDR`, in this host's subnet (required)")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || *netns == "" || *addr == "" {
		return fmt.Errorf("%w: add needs NAME, --netns and --addr, such as: slim container add web --netns /run/netns/web --addr 198.19.1.5", errUsage)
	}
	return withPolicyClient(fs, target, func(ctx context.Context, c *control.Client) error {
		got, err := c.ContainerAdd(ctx, control.ContainerSpec{Name: rest[0], Netns: *netns, Addr: *addr})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "registered container %s (%s, netns %s)\n", got.Name, got.Addr, got.Netns)
		return nil
	})
}

func runContainerDel(args []string) error {
	fs := newFlagSet("container del", "NAME "+policyTargetSynopsis, "Unregisters container NAME and resets its accelerated connections and listeners.")
	target := controlFlags(fs)
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("%w: del needs one argument, the container's name (see slim container list)", errUsage)
	}
	return withPolicyClient(fs, target, func(ctx context.Context, c *control.Client) error {
		n, err := c.ContainerDel(ctx, rest[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "container %s is not registered (any more); %d accelerated sockets reset\n", rest[0], n)
		return nil
	})
}

func runContainerList(args []string) error {
	fs := newFlagSet("container list", policyTargetSynopsis+" [--json]", "Lists the containers the router serves.")
	target := controlFlags(fs)
	asJSON := fs.Bool("json", false, "print the containers as the control API's JSON")
	if err := parseNoArguments(fs, args); err != nil {
		return err
	}
	return withPolicyClient(fs, target, func(ctx context.Context, c *control.Client) error {
		snap, err := c.Snapshot(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(snap.Containers)
		}
		return writeContainers(os.Stdout, snap.Containers)
	})
}

func writeContainers(w io.Writer, containers []control.Container) error {
	if len(containers) == 0 {
		_, err := fmt.Fprintln(w, "no containers registered")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDR\tSOURCE\tNETNS\tCONNECTIONS\tLISTENERS")
	for _, c := range containers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", c.Name, c.Addr, orDash(c.Source), orDash(c.Netns), c.Connections, c.Listeners)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
