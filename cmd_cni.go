package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/slimnet/slim/cni"
)

func init() {
	register(&command{
		name:    "cni",
		summary: "the CNI plugin (runtimes run slim as /opt/cni/bin/slim)",
		run:     runCNI,
	})
}

const cniDescription = `
Slim's CNI plugin (CNI spec 0.3.0 to 1.1.0: ADD, DEL, CHECK, STATUS, GC,
VERSION). A container runtime runs the plugin by the "type" of a network
configuration, from its CNI path, with CNI_COMMAND and the other CNI
variables set and the configuration on stdin: slim is the plugin when it
runs that way (with no arguments, or named slim-cni, or as 'slim cni').

Install:

  cp slim /opt/cni/bin/slim       # or: ln -s /usr/local/bin/slim /opt/cni/bin/slim

and a network configuration, such as /etc/cni/net.d/10-slim.conflist:

  {"cniVersion": "1.1.0", "name": "slim",
   "plugins": [{"type": "slim", "routerConfig": "/etc/slim/router.json"}]}

routerConfig is the router's own configuration file: the plugin takes the
overlay, this host's subnet and the router's directory from it. Optional:
"dataDir" (where allocations are kept, default /var/lib/slim/cni),
"rangeStart" and "rangeEnd" (hand out only part of this host's subnet).

ADD attaches the container to slim0 with a veth pair, gives it an address of
this host's subnet and the overlay route, and registers it with the router
(which accelerates it at once, or when it starts if it is down). DEL undoes
it and can be repeated. docs/cni.md has the details and the error codes.`

// cniInvoked says whether a runtime runs slim as a CNI plugin: CNI_COMMAND
// is set and slim has no arguments (or is named slim-cni).
func cniInvoked(args []string) bool {
	if os.Getenv("CNI_COMMAND") == "" {
		return false
	}
	return len(args) == 0 || filepath.Base(os.Args[0]) == "slim-cni"
}

func runCNI(args []string) error {
	if os.Getenv("CNI_COMMAND") != "" && len(args) == 0 {
		os.Exit(cni.Main(cniAbout()))
	}
	fs := newFlagSet("cni", "(run by a container runtime, with CNI_COMMAND set)", cniDescription)
	if len(args) == 0 {
		args = []string{"--help"}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return fmt.Errorf("%w: the plugin takes no arguments; a runtime runs it with CNI_COMMAND set", errUsage)
}

func cniAbout() string { return "slim CNI plugin " + version }
