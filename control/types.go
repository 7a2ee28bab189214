package control

import (
	"net/netip"
	"time"
)

// Version is the version of the request and reply format.
const Version = 1

// Operations a client may ask for.
const (
	OpSnapshot = "snapshot" // one snapshot
	OpWatch    = "watch"    // a snapshot (or its changes) every interval until the client goes away

	// Policy operations (secure mode): each replies with the rules.
	OpPolicyList = "policy_list" // the rules with their hits
	OpPolicyAdd  = "policy_add"  // insert Rule at Position (0: append)
	OpPolicyDel  = "policy_del"  // delete the rule at Position

	// Container operations: register a container with the router while
	// it runs, and unregister it (docs/control.md, Containers).
	OpContainerAdd = "container_add" // register Container
	OpContainerDel = "container_del" // unregister the container named Container.Name
)

// ops lists the operations, for error messages.
var ops = []string{OpSnapshot, OpWatch, OpPolicyList, OpPolicyAdd, OpPolicyDel, OpContainerAdd, OpContainerDel}

// Watch intervals: a client asking for less gets MinInterval.
const (
	MinInterval     = 100 * time.Millisecond
	DefaultInterval = time.Second
)

// Request is one line a client sends.
type Request struct {
	Version    int    `json:"version"`
	Op         string `json:"op"`
	IntervalMS int    `json:"interval_ms,omitempty"` // watch only
	// Changes asks a watch for delta mode: a snapshot first, then only
	// what changed (Changes). Routers that predate it ignore it and send
	// snapshots throughout.
	Changes bool `json:"changes,omitempty"`
	// Rule is a policy rule in its text form, such as "deny from
	// 198.19.2.0/24 to 198.19.1.0/24 port 5432" (policy_add).
	Rule string `json:"rule,omitempty"`
	// Position is a rule's 1-based position: where policy_add inserts
	// (0 or absent: at the end), which rule policy_del deletes.
	Position int `json:"position,omitempty"`
	// Container is the container to register (container_add: name,
	// netns, addr) or unregister (container_del: name).
	Container *ContainerSpec `json:"container,omitempty"`
}

// ContainerSpec is a container as container_add registers it.
type ContainerSpec struct {
	// Name is 1-63 letters, digits, '_', '.' or '-', starting with a
	// letter or digit; unique on the host.
	Name string `json:"name"`
	// Netns is the path of its network namespace as the router sees it
	// (such as /run/netns/NAME or /proc/PID/ns/net).
	Netns string `json:"netns,omitempty"`
	// Addr is its overlay address, in this host's subnet.
	Addr string `json:"addr,omitempty"`
	// ContainerID and IfName name the CNI attachment that made it, if a
	// CNI plugin did (its GC uses them); optional.
	ContainerID string `json:"container_id,omitempty"`
	IfName      string `json:"ifname,omitempty"`
}

// Reply is one line the router sends: a snapshot, the policy, or an error.
type Reply struct {
	Version  int       `json:"version"`
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`
	Snapshot *Snapshot `json:"snapshot,omitempty"`
	// Changes replaces Snapshot in a delta-mode watch's replies after the
	// first: apply it to the previous snapshot (Snapshot.Apply).
	Changes *Changes `json:"changes,omitempty"`
	// Policy is the list of rules after a policy operation (an empty
	// array when there are none); absent from other replies. An error
	// reply carries it when the rules changed anyway (saved, but not
	// applied).
	Policy []PolicyRule `json:"policy,omitzero"`
	// Position is where policy_add put the rule (1-based).
	Position int `json:"position,omitempty"`
	// Container is the container as registered (container_add).
	Container *ContainerSpec `json:"container,omitempty"`
	// ConnectionsReset counts the accelerated connections and listeners
	// of an unregistered container that the router reset (container_del).
	ConnectionsReset int `json:"connections_reset,omitempty"`
}

// Snapshot is the state of one router at one time.
type Snapshot struct {
	Time        time.Time    `json:"time"`
	Router      RouterHealth `json:"router"`
	Peers       []Peer       `json:"peers"`
	Containers  []Container  `json:"containers"`
	Listeners   []Listener   `json:"listeners"`
	Connections []Connection `json:"connections"`
	// ConnectionsTruncated counts connections left out of Connections
	// because of MaxConnections.
	ConnectionsTruncated int          `json:"connections_truncated,omitempty"`
	Shims                ShimStats    `json:"shims"`
	Policy               []PolicyRule `json:"policy"`
}

// RouterHealth is about the router that answers.
type RouterHealth struct {
	Version   string        `json:"version"`
	Host      netip.Addr    `json:"host"`   // underlay address
	Subnet    netip.Prefix  `json:"subnet"` // this host's share of the overlay
	Started   time.Time     `json:"started"`
	Uptime    time.Duration `json:"uptime_ns"`
	LastSweep time.Time     `json:"last_sweep"` // zero before the first sweep
	SweepErr  string        `json:"sweep_error,omitempty"`
	// Secure is set when the router runs in secure mode (docs/secure.md):
	// what its programs refused or checked since they were loaded.
	Secure *SecureEvents `json:"secure,omitempty"`
	// InsecurePeers is set when the router exchanges directories with its
	// peers unauthenticated (insecure_peers, no cluster key): any user on
	// a peer host can then redirect its containers' connections.
	InsecurePeers bool `json:"insecure_peers,omitempty"`
	// Store is set when the router takes the cluster from a store (etcd:
	// docs/cluster.md): how the store is doing.
	Store *StoreHealth `json:"store,omitempty"`
}

// StoreHealth is how a router's cluster store is doing: whether it
// answers, when it last took a write, sent the state and renewed the
// host's leases, and whether this host's listeners wait to be published.
// It has the fields of cluster.Health.
type StoreHealth struct {
	Backend   string   `json:"backend"` // "etcd"
	Endpoints []string `json:"endpoints,omitempty"`
	// Connected: the store answered the last call; Since: of that value.
	// Joined: this host is a member (a router that started while the
	// store did not answer serves from its saved state until it joins).
	Joined    bool      `json:"joined"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	ErrorAt   time.Time `json:"error_at,omitzero"`
	// Revision is the store's revision of the state the router serves.
	Revision    int64     `json:"revision"`
	LastWrite   time.Time `json:"last_write,omitzero"`
	LastWatch   time.Time `json:"last_watch,omitzero"`
	LastRenewal time.Time `json:"last_renewal,omitzero"`
	// Unpublished: this host's latest listeners are not in the store
	// yet; Pending lists wait (only the latest is written), since
	// PendingSince.
	Unpublished  bool      `json:"unpublished"`
	Pending      uint64    `json:"pending,omitempty"`
	PendingSince time.Time `json:"pending_since,omitzero"`
	Members      int       `json:"members"`
	Listeners    int       `json:"listeners"`
	// Resyncs counts full re-reads (after a compaction or a lost lease).
	Resyncs int `json:"resyncs"`
}

// SecureEvents counts secure mode's decisions in the kernel: connects the
// policy denied, connects, binds and socket options refused to
// containers, SYNs dropped for a missing or wrong MAC, SYNs verified.
type SecureEvents map[string]uint64

// Peer is another host's router.
type Peer struct {
	Host      netip.Addr   `json:"host"`
	Subnet    netip.Prefix `json:"subnet"`
	Connected bool         `json:"connected"` // this router's push connection is up
	// LastDirectory is when the peer last sent its directory (zero: never).
	LastDirectory time.Time `json:"last_directory"`
	Listeners     int       `json:"listeners"` // entries in its last directory
}

// Container is a container this router serves.
type Container struct {
	Name string     `json:"name"`
	Addr netip.Addr `json:"addr"`
	// Netns is the path it was registered with; Source says how:
	// SourceConfig (the router's configuration file) or SourceRuntime
	// (container_add or the CNI plugin, saved in DIR/containers).
	Netns  string `json:"netns,omitempty"`
	Source string `json:"source,omitempty"`
	// ContainerID and IfName: the CNI attachment, if a CNI plugin made it.
	ContainerID string `json:"container_id,omitempty"`
	IfName      string `json:"ifname,omitempty"`
	// Accelerated sockets open: established connections and listeners.
	Connections int `json:"connections"`
	Listeners   int `json:"listeners"`
	// PoolSockets counts the host sockets handed to the container (POOL)
	// that still exist: unused, connected or in flight, as the kernel
	// says. PoolQuota bounds them (the router's limits.pool_sockets);
	// PoolRefused counts the POOL requests refused for it.
	PoolSockets int    `json:"pool_sockets"`
	PoolQuota   int    `json:"pool_quota"`
	PoolRefused uint64 `json:"pool_refused"`
	// ShimSetups and ShimFallbacks are what the container's shims reported
	// (STATS) and the router credited: accelerated setups, and connects
	// that used the overlay.
	ShimSetups    uint64 `json:"shim_setups"`
	ShimFallbacks uint64 `json:"shim_fallbacks"`
}

// Sources of a registered container.
const (
	SourceConfig  = "config"
	SourceRuntime = "runtime"
)

// FDs is the number of accelerated sockets the container has open that
// the router can see: connections and listeners.
func (c Container) FDs() int { return c.Connections + c.Listeners }

// Listener is an accelerated listener of a container of this host.
type Listener struct {
	Container string         `json:"container"`
	Overlay   netip.AddrPort `json:"overlay"`
	Host      netip.AddrPort `json:"host"`
	Since     time.Time      `json:"since"`
}

// Roles of a connection.
const (
	RoleClient = "client" // the container connected (a pool socket)
	RoleServer = "server" // the container accepted (on a host listener)
)

// Connection is an established accelerated connection, as the kernel's
// sock_diag dump of the host namespace shows it.
type Connection struct {
	Cookie    uint64 `json:"cookie"`
	Container string `json:"container"`
	Role      string `json:"role"`
	// Local is the container's overlay address of the connection.
	Local netip.AddrPort `json:"local"`
	// Peer is the other end's overlay address when the router knows it
	// (always for clients; for servers only when the client is on this
	// host); otherwise invalid, and PeerHost is all there is.
	Peer     netip.AddrPort `json:"peer,omitzero"`
	PeerHost netip.AddrPort `json:"peer_host"` // host (underlay) address of the other end
	// PeerContainer names the peer when it is a container of this host.
	PeerContainer string    `json:"peer_container,omitempty"`
	Since         time.Time `json:"since"` // first seen by the router's sweep
	BytesIn       uint64    `json:"bytes_in"`
	BytesOut      uint64    `json:"bytes_out"`
	// RateIn and RateOut are bytes per second over the last sweep interval.
	RateIn  float64       `json:"rate_in"`
	RateOut float64       `json:"rate_out"`
	RTT     time.Duration `json:"rtt_ns"`
}

// PeerKnown reports whether the connection's overlay peer is known.
func (c Connection) PeerKnown() bool { return c.Peer.IsValid() }

// ShimStats is what shims reported in STATS messages.
type ShimStats struct {
	// Reports is the number of STATS messages received; zero means no data
	// from shims yet.
	Reports uint64 `json:"reports"`
	// Refused counts STATS messages refused whole: with a count no shim
	// can have gathered, or from a process in no registered container.
	Refused uint64 `json:"refused"`
	// Discarded counts what accepted messages reported beyond what the
	// router credits a container with: setups beyond the pool sockets it
	// was handed, fallbacks beyond its rate (docs/control.md).
	Discarded  uint64    `json:"discarded"`
	LastReport time.Time `json:"last_report"`
	// Fallbacks counts connects that went over the overlay, by reason.
	Fallbacks map[string]uint64 `json:"fallbacks"`
	// SetupBuckets is the histogram of accelerated connect setup times:
	// bucket i counts setups of less than 2^i µs (and at least 2^(i-1) µs
	// for i > 0); the last bucket has everything longer.
	SetupBuckets []uint64 `json:"setup_buckets_log2_us"`
	// SetupsPerSecond is the rate of accelerated setups over the last
	// RateWindow.
	SetupsPerSecond float64 `json:"setups_per_second"`
}

// PolicyRule is a policy rule with the connections it matched.
type PolicyRule struct {
	Position int    `json:"position"` // 1-based: the first rule that matches decides
	Rule     string `json:"rule"`     // text form, as policy_add takes it
	Action   string `json:"action"`   // "allow" or "deny"
	Hits     uint64 `json:"hits"`
}
