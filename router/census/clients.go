package census

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/protocol"
)

// The census and the peer channel's CLIENTS lists (docs/protocol.md §5).
// A server-side connection's sock_diag entry shows the client's host
// address only; the client's router knows which container owns that host
// socket. So each router sends every peer the client ends of its
// connections to that peer, and the census of the peer fills in Peer from
// the list of the client's host.

// remoteClients is the CLIENTS list a peer sent on one connection.
type remoteClients struct {
	session uint64                            // the peer connection it came on
	byHost  map[netip.AddrPort]netip.AddrPort // client host address → overlay address
}

// clientsState is the census's part of the CLIENTS exchange; its fields
// are guarded by the census's mutex.
type clientsState struct {
	// local groups this host's client connections by the host address of
	// their server: what each peer is told, sorted by host address.
	local map[netip.Addr][]protocol.Mapping
	// localChanged is closed and replaced when local changes.
	localChanged chan struct{}
	// remote holds each peer's latest list, by the peer's host address.
	remote map[netip.Addr]remoteClients
}

func newClientsState() clientsState {
	return clientsState{
		local:        map[netip.Addr][]protocol.Mapping{},
		localChanged: make(chan struct{}),
		remote:       map[netip.Addr]remoteClients{},
	}
}

// setLocalClients groups the client connections of a sweep (by their host
// socket's local address) by server host, and wakes the peer sessions if
// any group changed. Connections to this host's own listeners are left
// out, and so are those without an IPv4 overlay address. The caller holds
// c.mu.
func (c *Census) setLocalClients(clientsByHost map[netip.AddrPort]control.Connection, dir DirectoryView) {
	groups := map[netip.Addr][]protocol.Mapping{}
	for host, conn := range clientsByHost {
		if _, local := dir.LocalByHost[conn.PeerHost]; local || !conn.Local.Addr().Is4() || !host.Addr().Is4() {
			continue
		}
		server := conn.PeerHost.Addr()
		groups[server] = append(groups[server], protocol.Mapping{Overlay: conn.Local, Host: host})
	}
	for _, g := range groups {
		slices.SortFunc(g, func(a, b protocol.Mapping) int { return a.Host.Compare(b.Host) })
	}
	if maps.EqualFunc(groups, c.clients.local, slices.Equal) {
		return
	}
	c.clients.local = groups
	close(c.clients.localChanged)
	c.clients.localChanged = make(chan struct{})
}

// ClientsFor is the list to send to the peer at host address peer: this
// host's client connections to it whose host socket has the address self
// (a peer refuses others), at most protocol.MaxClients of them, with the
// number left out and a channel closed at the next change.
func (c *Census) ClientsFor(peer, self netip.Addr) (list []protocol.Mapping, omitted int, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.clients.local[peer] {
		if m.Host.Addr() == self {
			list = append(list, m)
		}
	}
	if len(list) > protocol.MaxClients {
		omitted, list = len(list)-protocol.MaxClients, list[:protocol.MaxClients]
	}
	return list, omitted, c.clients.localChanged
}

// SetRemoteClients replaces the CLIENTS list of a peer, sent on the peer
// connection numbered session.
func (c *Census) SetRemoteClients(peer netip.Addr, session uint64, list []protocol.Mapping) {
	byHost := make(map[netip.AddrPort]netip.AddrPort, len(list))
	for _, m := range list {
		byHost[m.Host] = m.Overlay
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clients.remote[peer] = remoteClients{session: session, byHost: byHost}
}

// DropRemoteClients forgets a peer's list when the connection it came on
// ends, unless a newer connection has replaced it already.
func (c *Census) DropRemoteClients(peer netip.Addr, session uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clients.remote[peer].session == session {
		delete(c.clients.remote, peer)
	}
}

// withRemotePeer fills in the overlay address of a server-side connection
// from the list of its client's host, if it has the client. The caller
// holds c.mu.
func (c *Census) withRemotePeer(conn control.Connection) control.Connection {
	if conn.Role != control.RoleServer || conn.Peer.IsValid() {
		return conn
	}
	if overlay, ok := c.clients.remote[conn.PeerHost.Addr()].byHost[conn.PeerHost]; ok {
		conn.Peer = overlay
	}
	return conn
}
