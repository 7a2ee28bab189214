package router

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/internal/strictjson"
	"github.com/slimnet/slim/overlay"
)

// DefaultPeerPort is the TCP port routers exchange directories on.
const DefaultPeerPort = 7946

// Config is a router's configuration file (JSON).
type Config struct {
	// Dir holds the shim socket (router.sock), the directory table and the
	// router's state; it can be bind-mounted into containers.
	Dir string `json:"dir"`
	// Overlay is the overlay CIDR and HostBits the size of a host subnet.
	Overlay  string `json:"overlay"`
	HostBits int    `json:"host_bits"`
	// OverlayIPv6, a /96 such as 2001:2::/96, gives containers IPv6
	// overlay addresses too: the prefix with their IPv4 overlay address
	// as the last 32 bits (docs/overlay.md). Empty: IPv4 only.
	OverlayIPv6 string `json:"overlay_ipv6,omitempty"`
	// Hosts lists every host of the cluster; Self is this router's index.
	Hosts []HostConfig `json:"hosts"`
	Self  int          `json:"self"`
	// PeerPort is the TCP port of the router-to-router directory exchange.
	PeerPort uint16 `json:"peer_port"`
	// Containers are the containers of this host the router serves.
	Containers []ContainerConfig `json:"containers"`
	// ControlGroup, if set, is a group (name or number) whose members may
	// use the control API too: control.sock becomes root:GROUP, mode 0660.
	// Otherwise it is readable by root only (0600).
	ControlGroup string `json:"control_group,omitempty"`
	// MetricsAddr, if set, is a TCP address (such as 127.0.0.1:9464) where
	// the router serves Prometheus text metrics at /metrics. Off if empty.
	MetricsAddr string `json:"metrics_addr,omitempty"`
	// Secure turns on secure mode (docs/secure.md): eBPF programs on the
	// router's cgroup guard the host sockets it hands out, and policy is
	// enforced. It needs KeyFile.
	Secure bool `json:"secure,omitempty"`
	// KeyFile holds the cluster key (at least 32 secret bytes, the same on
	// every host, readable by root only). It authenticates what routers
	// exchange and, in secure mode, every accelerated connection's SYN.
	// A router with peers needs it, unless InsecurePeers.
	KeyFile string `json:"key_file,omitempty"`
	// Cluster, if set, takes the cluster's hosts and directory from a
	// store (etcd) instead of Hosts (cluster_config.go).
	Cluster *ClusterConfig `json:"cluster,omitempty"`
	// InsecurePeers lets a router without a cluster key exchange
	// directories with its peers unauthenticated: then anyone who can
	// reach its peer port (any user of a peer host) can redirect its
	// containers' connections. For tests of old setups only.
	InsecurePeers bool `json:"insecure_peers,omitempty"`
	// Limits bound what one container or local user may take from the
	// router (limits.go); zero fields take the defaults.
	Limits Limits `json:"limits,omitzero"`
}

// HostConfig is one host of the cluster.
type HostConfig struct {
	Underlay string `json:"underlay"` // the host's address peers reach
	Subnet   string `json:"subnet"`   // its share of the overlay
}

// ContainerConfig registers a container: its network namespace (a path
// such as /run/netns/NAME or /proc/PID/ns/net) and its overlay address.
type ContainerConfig struct {
	Name  string `json:"name"`
	Netns string `json:"netns"`
	Addr  string `json:"addr"`
}

// LoadConfig reads and checks a configuration file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading router config: %w", err)
	}
	var c Config
	if err := strictjson.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("router config %s: %w", path, err)
	}
	if c.PeerPort == 0 {
		c.PeerPort = DefaultPeerPort
	}
	if err := c.Check(); err != nil {
		return Config{}, fmt.Errorf("router config %s: %w", path, err)
	}
	return c, nil
}

// Check is Plan's checks, without this host's subnet when the cluster
// store is to give it.
func (c Config) Check() error {
	_, err := c.plan(c.SubnetFromStore())
	return err
}

// Save writes the configuration atomically, readable by root only: it
// lists every container's network namespace and address.
func (c Config) Save(path string) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	os.Remove(tmp) // WriteFile keeps the mode of a file that exists
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// CheckPeerAuthentication refuses a router that has peers but no cluster
// key, unless InsecurePeers says to accept unauthenticated peers.
func (c Config) CheckPeerAuthentication() error {
	peers := len(c.Hosts) - 1
	if peers < 1 || c.KeyFile != "" || c.InsecurePeers {
		return nil
	}
	return fmt.Errorf("this router has %d peer router(s) and no cluster key: without one, "+
		"anyone who can reach its peer port (any user on a peer host) can forge the directory "+
		"and redirect its containers' connections; set key_file (or --key-file) to a file of at "+
		"least 32 random bytes, mode 0600, the same on every host (head -c 32 /dev/urandom > FILE), "+
		"or set insecure_peers (--insecure-peers) to accept unauthenticated peers anyway", peers)
}

// UnauthenticatedPeers says whether the router exchanges directories
// with peers without authentication (InsecurePeers and no key).
func (c Config) UnauthenticatedPeers() bool {
	return len(c.Hosts) > 1 && c.KeyFile == "" && c.InsecurePeers
}

// Plan checks the configuration and returns the overlay plan it describes.
// Each error names the field at fault and what is expected.
func (c Config) Plan() (overlay.Plan, error) {
	if c.SubnetFromStore() {
		return overlay.Plan{}, fmt.Errorf("hosts: this host's subnet comes from the cluster store, and its router has not "+
			"recorded one in %s yet: start slim router (it writes the file when it joins), or name the subnet in hosts", c.MemberPath())
	}
	return c.plan(false)
}

// plan is Plan; with pendingSubnet, this host's subnet is not known yet
// (the cluster store gives it at the join) and the plan has none.
func (c Config) plan(pendingSubnet bool) (overlay.Plan, error) {
	if c.Dir == "" || !filepath.IsAbs(c.Dir) {
		return overlay.Plan{}, fmt.Errorf("dir %q must be an absolute path", c.Dir)
	}
	cfg, err := overlay.ParseConfig(c.Overlay, c.HostBits)
	if err != nil {
		return overlay.Plan{}, err
	}
	if c.OverlayIPv6 != "" {
		if cfg.IPv6, err = overlay.ParseIPv6Prefix("overlay_ipv6", c.OverlayIPv6); err != nil {
			return overlay.Plan{}, err
		}
	}
	plan := overlay.Plan{Config: cfg}
	if len(c.Hosts) == 0 {
		return overlay.Plan{}, fmt.Errorf("hosts: none given; list every host of the cluster, this one included")
	}
	for i, h := range c.Hosts {
		underlay, err := netip.ParseAddr(h.Underlay)
		if err != nil {
			return overlay.Plan{}, fmt.Errorf("host %d: underlay %q is not an IP address", i+1, h.Underlay)
		}
		var subnet netip.Prefix
		if !pendingSubnet {
			if subnet, err = overlay.ParsePrefix(fmt.Sprintf("host %d subnet", i+1), h.Subnet); err != nil {
				return overlay.Plan{}, err
			}
		}
		plan.Hosts = append(plan.Hosts, overlay.HostPlan{Underlay: underlay, Subnet: subnet})
	}
	if c.Self < 0 || c.Self >= len(plan.Hosts) {
		return overlay.Plan{}, fmt.Errorf("self %d does not name one of the %d hosts (0 is the first)", c.Self, len(plan.Hosts))
	}
	if pendingSubnet {
		// The subnet, and the containers' addresses in it, are checked
		// once the store gave it (Plan, when the router starts).
		return plan, c.Limits.check()
	}
	if err := plan.Validate(); err != nil {
		return overlay.Plan{}, err
	}
	if err := c.Limits.check(); err != nil {
		return overlay.Plan{}, err
	}
	if c.Secure && c.KeyFile == "" {
		return overlay.Plan{}, fmt.Errorf("secure mode needs a cluster key: set key_file (or --key-file) to a file of at least 32 random bytes, the same on every host")
	}
	if err := checkContainers(plan.Hosts[c.Self], c.Containers); err != nil {
		return overlay.Plan{}, err
	}
	return plan, nil
}

// checkContainers checks each container and that no two share a name, a
// network namespace or an address.
func checkContainers(self overlay.HostPlan, containers []ContainerConfig) error {
	byName, byNetns, byAddr := map[string]string{}, map[string]string{}, map[netip.Addr]string{}
	for i, ct := range containers {
		if ct.Name == "" {
			return fmt.Errorf("container %d: no name", i+1)
		}
		if _, dup := byName[ct.Name]; dup {
			return fmt.Errorf("container %s: the name is given twice", ct.Name)
		}
		byName[ct.Name] = ct.Name
		addr, err := checkContainer(self, ct)
		if err != nil {
			return err
		}
		netns := filepath.Clean(ct.Netns)
		if other, dup := byNetns[netns]; dup {
			return fmt.Errorf("container %s: netns %s is container %s's too; each container has a network namespace of its own", ct.Name, ct.Netns, other)
		}
		byNetns[netns] = ct.Name
		if other, dup := byAddr[addr]; dup {
			return fmt.Errorf("container %s: address %s is container %s's too", ct.Name, addr, other)
		}
		byAddr[addr] = ct.Name
	}
	return nil
}

func checkContainer(self overlay.HostPlan, ct ContainerConfig) (netip.Addr, error) {
	if ct.Netns == "" {
		return netip.Addr{}, fmt.Errorf("container %s: no netns (a path such as /run/netns/NAME or /proc/PID/ns/net)", ct.Name)
	}
	if !filepath.IsAbs(ct.Netns) {
		return netip.Addr{}, fmt.Errorf("container %s: netns %q must be an absolute path (such as /run/netns/NAME or /proc/PID/ns/net)", ct.Name, ct.Netns)
	}
	addr, err := netip.ParseAddr(ct.Addr)
	if err != nil || !addr.Is4() {
		return netip.Addr{}, fmt.Errorf("container %s: addr %q is not an IPv4 address", ct.Name, ct.Addr)
	}
	if problem := self.ContainerAddrProblem(addr); problem != "" {
		first, last := self.ContainerRange()
		return netip.Addr{}, fmt.Errorf("container %s: addr %s %s; a container's address is from %s to %s", ct.Name, addr, problem, first, last)
	}
	return addr, nil
}

// SocketPath is where the router serves shims.
func (c Config) SocketPath() string { return filepath.Join(c.Dir, "router.sock") }

// ControlPath is where the router serves the control API (docs/control.md).
func (c Config) ControlPath() string { return filepath.Join(c.Dir, control.SocketName) }

// DirectoryPath is the directory table's file.
func (c Config) DirectoryPath() string { return filepath.Join(c.Dir, "directory") }

// PolicyPath is where the router keeps its policy rules (secure mode).
func (c Config) PolicyPath() string { return filepath.Join(c.Dir, "policy.json") }

// statePath is where the router keeps its listeners across a restart.
func (c Config) statePath() string { return filepath.Join(c.Dir, "router.state") }
