package main

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/slimnet/slim/internal/nodeinstall"
)

func init() {
	register(&command{
		name:    "install",
		summary: "put slim on a node from a container (the Kubernetes DaemonSet's install step)",
		run:     runInstall,
	})
}

const installDescription = `
Installs Slim on the node whose root file system is mounted at --host-root,
as the install step of deploy/kubernetes does:

  /opt/slim/bin/slim            a copy of this binary
  /opt/slim/bin/slim-runc       the OCI runtime wrapper (a link to slim)
  /opt/cni/bin/slim             the CNI plugin (a link to /opt/slim/bin/slim)
  /etc/slim/router.json         the router's configuration from --config-dir,
                                with "self" set to the host whose underlay
                                address is --node-address (mode 0600)
  /etc/cni/net.d/10-slim.conflist   from --config-dir, checked
  /etc/slim/runtime.json        from --config-dir, if there

Every file is written atomically; running it again replaces them.`

func runInstall(args []string) error {
	fs := newFlagSet("install", "--host-root DIR --config-dir DIR [--node-address ADDR]", installDescription)
	hostRoot := fs.String("host-root", "", "`DIR` where the host's root file system is mounted (required)")
	configDir := fs.String("config-dir", "", "`DIR` with router.json, 10-slim.conflist and optionally runtime.json (required)")
	node := fs.String("node-address", "", "this node's underlay `ADDR`ess (Kubernetes: status.hostIP); picks the router's self")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *hostRoot == "" || *configDir == "" {
		return fmt.Errorf("%w: --host-root and --config-dir are required", errUsage)
	}
	opts := nodeinstall.Options{HostRoot: *hostRoot, ConfigDir: *configDir}
	if *node != "" {
		addr, err := netip.ParseAddr(*node)
		if err != nil {
			return fmt.Errorf("%w: --node-address %q is not an IP address", errUsage, *node)
		}
		opts.NodeAddress = addr
	}
	binary, err := os.Executable()
	if err != nil {
		return err
	}
	opts.Binary = binary
	done, err := nodeinstall.Install(opts)
	for _, line := range done {
		fmt.Println(line)
	}
	return err
}
