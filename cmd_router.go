package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/slimnet/slim/router"
)

func init() {
	register(&command{
		name:    "router",
		summary: "run the per-host router that hands containers host TCP sockets",
		run:     runRouter,
	})
}

const routerDescription = `
Runs the per-host router in the host's network namespace. Programs started
with 'slim exec' in a registered container reach it over DIR/router.sock;
it hands them host TCP sockets (pools for connects, host listeners standing
for their overlay listeners), publishes DIR/directory for their connects,
and exchanges the directory with the routers of the other hosts (TCP port
peer_port on each host's underlay address).

The configuration file (JSON) names the overlay, every host, this host and
its containers:

  {"dir": "/run/slim", "overlay": "198.19.0.0/16", "host_bits": 24,
   "hosts": [{"underlay": "198.18.0.1", "subnet": "198.19.1.0/24"},
             {"underlay": "198.18.0.2", "subnet": "198.19.2.0/24"}],
   "self": 0, "peer_port": 7946,
   "containers": [{"name": "web", "netns": "/run/netns/web", "addr": "198.19.1.2"}]}

'slim lab up' writes one per lab host and starts the routers itself.
The router enables TCP Fast Open (net.ipv4.tcp_fastopen |= 3) in its
network namespace. Established connections do not depend on the router:
they survive its restart, and a restarted router keeps its listeners.

The router creates (or corrects) this host's overlay devices at start and
checks them every 10 s: the bridge slim0, the VXLAN device slim-vx, each
peer's route and static entries, ip_forward; a clean stop leaves them
('slim overlay down' removes them). The containers of the config are
served from the start; others are registered while it runs (the CNI
plugin, 'slim container add', docs/cni.md), saved in DIR/containers and
served again after a restart. A container whose network namespace is gone
is one warning; the others are served.

The router also serves its control API on DIR/control.sock (docs/control.md;
root only, or root and --control-group), which 'slim top' and 'slim status'
read. Optional fields: "control_group", "metrics_addr", "secure", "key_file",
"insecure_peers", and "limits": {"shim_connections": 4096,
"stranger_connections": 16, "pool_sockets": 16384}, what one container (or
one local user outside the containers) may hold (docs/secure.md). Unknown
fields are errors.

Routers authenticate their directory exchange with the cluster key
(key_file or --key-file: 32+ random bytes, mode 0600, the same on every
host). A router with peers and no key refuses to start: anyone who can
reach its peer port could forge directories and redirect its containers'
connections. --insecure-peers (insecure_peers) runs it unauthenticated
anyway, with a warning in its log and in 'slim status'.

With a "cluster" section the hosts come from etcd instead of the host
list, which then names this host alone (docs/cluster.md):

  "cluster": {"store": "etcd", "host_id": "h1",
              "etcd": {"endpoints": ["https://198.18.0.101:2379"],
                       "ca_file": "/etc/slim/etcd-ca.pem",
                       "cert_file": "/etc/slim/h1.pem", "key_file": "/etc/slim/h1-key.pem"}}

The router claims its subnet there, publishes its listeners, follows the
other hosts' and routes the overlay to them. Stopping it keeps its place
(a restart gets the same subnet); --leave gives the place up. If etcd does
not answer within 2 s at start, the router serves from the cluster state it
saved at its last run (DIR/cluster.json) and joins in the background. In
secure mode the policy is the cluster's, kept in etcd.

With --secure (docs/secure.md) the router moves into its own cgroup v2,
loads eBPF programs that guard every host socket it hands out (no host
address reaches a container; a container cannot re-target them), signs
each accelerated SYN with the cluster key, and enforces the policy that
'slim policy' manages. It refuses to start, naming the feature, if the
kernel lacks one it needs. The programs outlive a router that is killed,
or that stops while host sockets it made are open: they keep guarding
those sockets, and the next start takes them over. A clean stop with no
such socket left removes every program, pin and cgroup; --cleanup removes
them after a router stopped (sockets still open are then unguarded).`

func runRouter(args []string) error {
	fs := newFlagSet("router", "--config FILE [--key-file FILE [--secure] | --insecure-peers] [--verbose] [--control-group GROUP] [--metrics ADDR] | --config FILE --cleanup | --config FILE --leave", routerDescription)
	secureMode := fs.Bool("secure", false, "secure mode: eBPF guards the host sockets containers get, and policy is enforced (docs/secure.md)")
	keyFile := fs.String("key-file", "", "`FILE` with the cluster key (32+ secret bytes, mode 0600, the same on every host; overrides key_file)")
	insecurePeers := fs.Bool("insecure-peers", false, "INSECURE: without a cluster key, exchange directories with peer routers unauthenticated (any user on a peer host can then redirect connections)")
	configPath := fs.String("config", "", "`FILE` with the router's configuration (required)")
	verbose := fs.Bool("verbose", false, "log every request and decision")
	controlGroup := fs.String("control-group", "", "`GROUP` (name or id) that may use DIR/control.sock too (default: root only; overrides control_group)")
	metrics := fs.String("metrics", "", "serve Prometheus text metrics at http://`ADDR`/metrics (off by default; overrides metrics_addr)")
	leave := fs.Bool("leave", false, "do not run: give this host's place in the cluster store up (its subnet is free at once; docs/cluster.md)")
	cleanup := fs.Bool("cleanup", false, "do not run: remove the secure-mode programs, pins and cgroups a stopped router of this configuration left")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *configPath == "" {
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	config, err := router.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	if *cleanup {
		return cleanupRouter(config)
	}
	if *controlGroup != "" {
		config.ControlGroup = *controlGroup
	}
	if *metrics != "" {
		config.MetricsAddr = *metrics
	}
	if *keyFile != "" {
		config.KeyFile = *keyFile
	}
	if *insecurePeers {
		config.InsecurePeers = true
	}
	if *secureMode {
		config.Secure = true
		if err := config.Check(); err != nil {
			return err
		}
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	warnReadableConfig(logger, *configPath)
	link, err := router.JoinCluster(&config, logger)
	if err != nil {
		return err
	}
	if link != nil {
		defer link.Store.Close()
		if *leave {
			return link.Leave()
		}
	} else if *leave {
		return fmt.Errorf("%w: --leave needs a cluster store (the config's \"cluster\" section)", errUsage)
	}
	var r *router.Router
	if link != nil {
		r, err = router.NewOnCluster(config, link, logger)
	} else {
		r, err = router.New(config, logger)
	}
	if err != nil {
		return err
	}
	r.SetVersion(version)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if link != nil {
		return r.RunWithCluster(ctx, link)
	}
	return r.Run(ctx)
}

// warnReadableConfig warns when the configuration file is readable by
// other users than its owner: it lists every container's network
// namespace and address (docs/secure.md, "What a local user can read").
func warnReadableConfig(logger *slog.Logger, path string) {
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm()&0o044 == 0 {
		return
	}
	logger.Warn("the router config is readable by other users; it lists every container's network namespace and address: chmod 600 it",
		"config", path, "mode", fmt.Sprintf("%#o", st.Mode().Perm()))
}

// cleanupRouter is slim router --cleanup.
func cleanupRouter(config router.Config) error {
	report, err := router.Cleanup(config)
	if err != nil {
		return err
	}
	if !report.Found {
		fmt.Printf("the router of %s left nothing of secure mode in the kernel\n", config.Dir)
		return nil
	}
	fmt.Printf("removed the secure-mode programs, pins and cgroups the router of %s left\n", config.Dir)
	switch {
	case !report.Counted:
		fmt.Println("host sockets it made may still be open; they are no longer guarded")
	case report.OpenSockets > 0:
		fmt.Printf("%d host sockets it made are still open; they are no longer guarded\n", report.OpenSockets)
	}
	if len(report.Enrolled) > 0 {
		fmt.Printf("processes enrolled in %s run on, no longer under the policy check\n", strings.Join(report.Enrolled, ", "))
	}
	return nil
}
