package router

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/census"
	"github.com/slimnet/slim/router/controlapi"
	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/policy"
	"github.com/slimnet/slim/router/shimserver"
	"github.com/slimnet/slim/secure"
)

// Router is the per-host daemon. Create it with New, then Run it.
// docs/architecture.md describes its parts.
type Router struct {
	config  Config
	plan    overlay.Plan
	self    overlay.HostPlan
	log     *slog.Logger
	version string    // what the control API reports
	started time.Time // when New made it
	// clusterLink is the router's membership of a cluster store, set by
	// NewOnCluster or RunWithCluster (cluster_linux.go); nil for a static
	// cluster.
	clusterLink *ClusterLink
	// keepsOverlay: New set the host's overlay up, and Run repairs it
	// (overlay_linux.go).
	keepsOverlay bool
	// clusterKey authenticates the peer channel; nil without config.KeyFile.
	clusterKey *secure.ClusterKey

	// What the parts share.
	containers *containerSet // registered containers (containers_linux.go)
	records    records       // their saved records (registration_linux.go)
	listeners  *registry     // this host's listeners and the peers' (registry.go)
	table      *directory.Table
	publishMu  sync.Mutex // orders writes of the table and the state file
	// mode is plainMode, or secureMode once startSecure took the kernel
	// over (mode_linux.go, secure_linux.go).
	mode mode
	// Secure mode's policy (policy_control_linux.go): nil unless secure.
	policyMu sync.Mutex
	policy   *policy.Set
	// On a cluster store (cluster_policy_linux.go): the revision of the
	// cluster's policy document r.policy came from (-1: from the file
	// only), and the store revision at which it was known.
	policyRevision, policySeen int64

	// The parts, which Run runs (run_linux.go). The shim server
	// (shims_linux.go) asks callers who connects, and the kernel through
	// netnsOfSocket the network namespace of a LISTEN's socket (SIOCGSKNS
	// needs CAP_NET_ADMIN, which root-free tests do without).
	shims         *shimserver.Server
	callers       identifier
	netnsOfSocket func(fd int) (uint64, error)
	// cluster is where the other hosts and their listeners come from
	// (cluster.go); New makes it again once the peer socket is open.
	cluster   Cluster
	census    *census.Census
	shimStats *census.ShimStats
	sweeper   *census.Sweeper // sweep_linux.go

	// The router's own sockets, which New opens.
	socket     *net.UnixListener // DIR/router.sock, for shims
	peerSocket *net.TCPListener  // the peer port
	control    net.Listener      // DIR/control.sock
	metrics    net.Listener      // nil unless metrics_addr
}

// limits are the configured limits, defaults filled in.
func (r *Router) limits() Limits { return r.config.Limits.withDefaults() }

// New checks the configuration and the kernel, then opens the router's
// sockets and directory table, and only then (in secure mode) takes over
// the programs and pins an earlier router left: a start that fails on a
// socket in use, a bad configuration or policy never touches what guards
// the sockets handed out before. Nothing is served until Run.
func New(config Config, logger *slog.Logger) (*Router, error) {
	return newWithLink(config, nil, logger)
}

// newWithLink is New, for a router on a cluster store if link is not nil
// (NewOnCluster).
func newWithLink(config Config, link *ClusterLink, logger *slog.Logger) (*Router, error) {
	plan, err := config.Plan()
	if err != nil {
		return nil, err
	}
	if err := config.CheckPeerAuthentication(); err != nil {
		return nil, err
	}
	var clusterKey *secure.ClusterKey
	if config.KeyFile != "" {
		if clusterKey, err = secure.LoadClusterKey(config.KeyFile); err != nil {
			return nil, err
		}
	}
	r := newRouter(config, plan, clusterKey, logger)
	r.clusterLink = link // setUpOverlay keeps the peers it routes
	if err := r.loadPolicy(); err != nil {
		return nil, err
	}
	if err := r.registerContainers(); err != nil {
		return nil, err
	}
	if err := r.setUpOverlay(); err != nil {
		r.closeContainers()
		return nil, err
	}
	if err := enableFastOpen(); err != nil {
		r.closeContainers()
		return nil, err
	}
	if err := r.open(); err != nil {
		r.closeSockets()
		r.closeContainers()
		return nil, err
	}
	r.cluster = r.newCluster()
	// Last: the host sockets made from here on (pools, host listeners) are
	// in the router's cgroup; a failure here leaves what guards the
	// sockets made before in place (startSecure).
	if err := r.startSecure(); err != nil {
		r.closeSockets()
		r.closeContainers()
		return nil, err
	}
	r.callers = kernelIdentifier{containers: r.containers, mode: r.mode}
	return r, nil
}

// newRouter makes the router's parts in memory, in plain mode: it opens
// nothing and asks the kernel nothing (New does, after it).
func newRouter(config Config, plan overlay.Plan, clusterKey *secure.ClusterKey, logger *slog.Logger) *Router {
	r := &Router{
		config:     config,
		plan:       plan,
		self:       plan.Hosts[config.Self],
		log:        logger,
		containers: newContainerSet(),
		listeners:  newRegistry(),
		version:    "dev",
		started:    time.Now(),
		census:     census.New(),
		shimStats:  census.NewShimStats(),
		clusterKey: clusterKey,
		mode:       plainMode{},

		policyRevision: -1,
		netnsOfSocket:  socketNetns,
	}
	r.sweeper = census.NewSweeper(r.census, sweepHost{r}, logger)
	r.cluster = r.newCluster() // no peer socket yet: New makes it again
	r.callers = kernelIdentifier{containers: r.containers, mode: r.mode}
	r.shims = r.newShimServer()
	return r
}

// enableFastOpen makes sure this namespace's TCP Fast Open allows clients
// (bit 1: preambles ride in the SYN) and servers (bit 2).
func enableFastOpen() error {
	const path = "/proc/sys/net/ipv4/tcp_fastopen"
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("TCP Fast Open: %w", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("TCP Fast Open: reading %s: %w", path, err)
	}
	if v&3 == 3 {
		return nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(v|3)), 0o644); err != nil {
		return fmt.Errorf("TCP Fast Open must be enabled (sysctl net.ipv4.tcp_fastopen=%d): %w", v|3, err)
	}
	return nil
}

func (r *Router) open() error {
	if err := makeRouterDir(r.config.Dir); err != nil {
		return err
	}
	table, err := directory.Open(r.config.DirectoryPath(), directory.DefaultCapacity, r.plan.Config.CIDR)
	if err != nil {
		return err
	}
	r.table = table
	if err := r.restoreState(); err != nil {
		r.log.Warn("ignoring saved listeners", "err", err)
	}
	if r.socket, err = listenShims(r.config.SocketPath()); err != nil {
		return err
	}
	addr := net.TCPAddrFromAddrPort(netip.AddrPortFrom(r.self.Underlay, r.config.PeerPort))
	if r.peerSocket, err = net.ListenTCP("tcp4", addr); err != nil {
		return fmt.Errorf("listening for peer routers on %s: %w", addr, err)
	}
	if r.control, err = controlapi.Listen(r.config.ControlPath(), r.config.ControlGroup); err != nil {
		return err
	}
	if r.config.MetricsAddr != "" {
		if r.metrics, err = net.Listen("tcp", r.config.MetricsAddr); err != nil {
			return fmt.Errorf("listening for metrics on %s: %w", r.config.MetricsAddr, err)
		}
	}
	return nil
}

// listenShims opens the shim socket, replacing a stale one left by a
// router that died, but refusing to take over from one that is running.
func listenShims(path string) (*net.UnixListener, error) {
	if conn, err := net.Dial("unixpacket", path); err == nil {
		conn.Close()
		return nil, fmt.Errorf("another router is serving %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	l.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// SetVersion sets the version the control API reports (before Run).
func (r *Router) SetVersion(v string) { r.version = v }

// closeSockets closes the router's own sockets and its directory table.
func (r *Router) closeSockets() {
	if r.socket != nil {
		r.socket.Close()
	}
	if r.peerSocket != nil {
		r.peerSocket.Close()
	}
	if r.control != nil {
		r.control.Close()
	}
	if r.metrics != nil {
		r.metrics.Close()
	}
	if r.table != nil {
		r.table.Close()
	}
}

// publish writes the directory table and the saved state after a change.
func (r *Router) publish() {
	r.publishMu.Lock()
	defer r.publishMu.Unlock()
	entries := r.listeners.entries()
	r.mode.setRoutes(entries)
	if err := r.table.Publish(r.mode.shimEntries(entries)); err != nil {
		r.log.Error("publishing directory", "err", err)
	}
	if err := r.saveState(); err != nil {
		r.log.Error("saving state", "err", err)
	}
}
