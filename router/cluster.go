package router

import (
	"context"
	"net/netip"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/peers"
	"github.com/slimnet/slim/router/protocol"
)

// Cluster is where a router's cluster state comes from: which other hosts
// there are, and how this host's listeners reach them and theirs reach
// this host (docs/architecture.md, "Where cluster state comes from").
// It is the static host list of the configuration with the full-mesh
// exchange between routers (package peers, newCluster), or, for a router
// on a cluster store, storeCluster (cluster_linux.go, RunWithCluster),
// which feeds the same registry from the store.
type Cluster interface {
	// Peers lists the other hosts and how the exchange with each is
	// doing, for the control API (Listeners is left to the router).
	Peers() []control.Peer
	// Run carries this host's listeners out (Directory.LocalMappings)
	// and the other hosts' in (Directory.SetRemote) until ctx is done,
	// and returns once every goroutine it started is done.
	Run(ctx context.Context) error
	// WaitPublished waits, briefly, until the other hosts' shims can find
	// this host's listeners of a version (LISTEN returns after it).
	WaitPublished(version uint64)
}

// Directory is the router's directory as a Cluster sees it: this host's
// listeners, and where the other hosts' go. It is peers.Directory.
type Directory interface {
	// LocalMappings is this host's listeners, one mapping per overlay
	// address, their version and a channel closed at the next change.
	LocalMappings() (mappings []protocol.Mapping, version uint64, changed <-chan struct{})
	// SetRemote makes mappings the listeners of the host at underlay
	// address host, published to this host's shims when it returns.
	SetRemote(host netip.Addr, mappings []protocol.Mapping)
}

var _ Cluster = (*peers.Exchange)(nil)

// newCluster is the router's cluster: the hosts of its configuration,
// with which it exchanges directories over the peer socket.
func (r *Router) newCluster() Cluster {
	return peers.New(peers.Config{
		Self: r.self, Peers: r.plan.Peers(r.config.Self), Port: r.config.PeerPort, Key: r.clusterKey,
		Listener: r.peerSocket, Directory: routerDirectory{r}, Clients: r.census, Log: r.log,
	})
}

// routerDirectory is the registry as a Cluster feeds it.
type routerDirectory struct{ router *Router }

var _ Directory = routerDirectory{}
var _ peers.Directory = routerDirectory{}

func (d routerDirectory) LocalMappings() ([]protocol.Mapping, uint64, <-chan struct{}) {
	return d.router.listeners.localMappings()
}

// SetRemote records a host's listeners and publishes the directory.
func (d routerDirectory) SetRemote(host netip.Addr, mappings []protocol.Mapping) {
	d.router.listeners.setRemote(host, mappings)
	d.router.publish()
}

// warnPeerAuthentication says loudly, at start, that the peer channel is
// not authenticated (insecure_peers).
func (r *Router) warnPeerAuthentication() {
	switch {
	case r.config.UnauthenticatedPeers():
		r.log.Warn("INSECURE: insecure_peers is set and there is no cluster key: the directory exchange with peer routers is NOT authenticated; " +
			"any user on a peer host can redirect this host's accelerated connections. Set key_file on every router.")
	case r.config.InsecurePeers && r.clusterKey != nil:
		r.log.Info("insecure_peers is ignored: the cluster key authenticates the peer channel")
	}
}
