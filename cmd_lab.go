package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/slimnet/slim/lab"
)

func init() {
	register(&command{
		name:    "lab",
		summary: "build and use a multi-host test bed of network namespaces",
		run:     runLab,
	})
}

const labDescription = `Builds hosts as network namespaces on a shared wire (198.18.0.0/24), each
with Slim's VXLAN overlay (198.19.0.0/16, one /24 per host), and containers
attached to the overlay. Needs root. Nothing is attached to the machine's own
interfaces and no default route is added.

Subcommands:
  up       build the lab (an error if it is up or half built)
  down     remove the lab, its processes and any leftovers of a crashed up
  status   show hosts, containers and addresses
  exec     run a command in a host or container: slim lab exec h1-c1 -- ping 198.19.2.2
  add-host add a host (and its containers and router) to a lab on etcd that is up

Every host runs a slim router (unless --routers=false), with the lab's
cluster key (/run/slim/lab/NAME/cluster.key, made at the first start, root
only), which authenticates the routers' directory exchange. With
--store etcd the lab also runs a 3-member etcd (Debian's etcd-server) in
namespaces e1-e3 on the wire (198.18.0.101-103, mutual TLS, one etcd user
per host), and the routers take the other hosts, their subnets and their
listeners from it instead of a host list (docs/cluster.md). 'slim lab exec'
points SLIM_ROUTER_SOCK at the node's router, so in a container
'slim lab exec h1-c1 -- slim exec -- CMD' runs CMD accelerated.`

func runLab(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		fs := newFlagSet("lab", "up|down|status|exec|add-host [flags]", labDescription)
		return parseFlags(fs, []string{"--help"})
	}
	switch args[0] {
	case "up":
		return runLabUp(args[1:])
	case "down":
		return runLabDown(args[1:])
	case "status":
		return runLabStatus(args[1:])
	case "exec":
		return runLabExec(args[1:])
	case "add-host":
		return runLabAddHost(args[1:])
	default:
		return fmt.Errorf("%w: unknown lab subcommand %q (want up, down, status, exec or add-host)", errUsage, args[0])
	}
}

func labNameFlag(fs *flag.FlagSet) *string {
	return fs.String("name", lab.DefaultName, "lab name: prefix of its namespaces")
}

func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

func runLabUp(args []string) error {
	fs := newFlagSet("lab up", "[flags]", "Builds a lab and prints its status.")
	name := labNameFlag(fs)
	hosts := fs.Int("hosts", 2, fmt.Sprintf("number of hosts (1-%d)", lab.MaxHosts))
	containers := fs.Int("containers", 1, fmt.Sprintf("containers per host (0-%d)", lab.MaxContainers))
	routers := fs.Bool("routers", true, "start a slim router in every host")
	secureMode := fs.Bool("secure", false, "start the routers in secure mode (docs/secure.md)")
	store := fs.String("store", "", "where the routers take the cluster from: etcd (a 3-member etcd on the wire, docs/cluster.md); default: each router's host list")
	ipv6 := fs.Bool("ipv6", false, "give containers IPv6 overlay addresses too (2001:2::/96 plus the IPv4 address; the wire stays IPv4)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	l, err := lab.Up(lab.Spec{Name: *name, Hosts: *hosts, Containers: *containers, Store: *store, IPv6: *ipv6})
	if err != nil {
		return err
	}
	if *routers {
		if err := startLabRouters(l, *secureMode); err != nil {
			return err
		}
	}
	return l.PrintStatus(os.Stdout)
}

// startLabRouters runs this slim binary's router in every host of the lab,
// taking the lab down again if one fails.
func startLabRouters(l *lab.Lab, secureMode bool) error {
	start := (*lab.Lab).StartRouters
	if secureMode {
		start = (*lab.Lab).StartSecureRouters
	}
	self, err := os.Executable()
	if err == nil {
		err = start(l, self)
	}
	if err != nil {
		return errors.Join(err, lab.Down(l.Name))
	}
	return nil
}

func runLabAddHost(args []string) error {
	fs := newFlagSet("lab add-host", "[flags]", "Adds a host to a lab on etcd (slim lab up --store etcd) that is up, starts its router\n"+
		"and prints the lab's status. No other host's configuration changes: the other routers\n"+
		"learn of the new host from etcd.")
	name := labNameFlag(fs)
	containers := fs.Int("containers", 1, fmt.Sprintf("containers of the new host (0-%d)", lab.MaxContainers))
	routers := fs.Bool("routers", true, "start a slim router in the new host")
	secureMode := fs.Bool("secure", false, "start its router in secure mode (as the lab's others: docs/secure.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	l, err := lab.Load(*name)
	if err != nil {
		return err
	}
	host, err := l.AddHost(*containers)
	if err != nil {
		return err
	}
	if *routers {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		var args []string
		if *secureMode {
			args = append(args, "--secure")
		}
		if err := l.StartHostRouter(host.Name, self, args...); err != nil {
			return err
		}
	}
	return l.PrintStatus(os.Stdout)
}

func runLabDown(args []string) error {
	fs := newFlagSet("lab down", "[flags]", "Stops every process in the lab's namespaces and removes them.\nSafe to run on a lab that is not up or was half built.")
	name := labNameFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	return lab.Down(*name)
}

func runLabStatus(args []string) error {
	fs := newFlagSet("lab status", "[flags]", "Shows the lab's hosts, containers and addresses.")
	name := labNameFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	l, err := lab.Load(*name)
	if errors.Is(err, lab.ErrNotUp) {
		if left, _ := lab.Leftovers(*name); len(left) > 0 {
			return fmt.Errorf("lab %s is not up but left namespaces %v behind: run slim lab down --name %s", *name, left, *name)
		}
	}
	if err != nil {
		return err
	}
	if err := l.PrintStatus(os.Stdout); err != nil {
		return err
	}
	return l.Check()
}

func runLabExec(args []string) error {
	fs := newFlagSet("lab exec", "[flags] NODE -- CMD [ARGS...]", "Runs CMD in the network namespace of NODE, a host (h1) or container (h1-c1).")
	name := labNameFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) > 1 && rest[1] == "--" {
		rest = append(rest[:1], rest[2:]...)
	}
	if len(rest) < 2 {
		return fmt.Errorf("%w: want NODE -- CMD [ARGS...]", errUsage)
	}
	l, err := lab.Load(*name)
	if err != nil {
		return err
	}
	node, err := l.Node(rest[0])
	if err != nil {
		return err
	}
	if sock, err := l.RouterSocket(node.Name); err == nil && os.Getenv("SLIM_ROUTER_SOCK") == "" {
		os.Setenv("SLIM_ROUTER_SOCK", sock)
	}
	return node.Exec(rest[1:])
}
