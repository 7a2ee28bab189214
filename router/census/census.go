package census

import (
	"github.com/slimnet/slim/router/sockdiag"

	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/slimnet/slim/control"
)

// Socket is one TCP socket of the host namespace as sock_diag shows it.
type Socket struct {
	Cookie   uint64
	State    uint8
	Local    netip.AddrPort
	Remote   netip.AddrPort
	BytesIn  uint64 // tcpi_bytes_received
	BytesOut uint64 // tcpi_bytes_acked
	RTT      time.Duration
}

// poolSocket is a host socket handed to a container for a connect.
type poolSocket struct {
	container string
	handed    time.Time
}

// Census knows the accelerated connections of this host without any
// message on the data path: the router created every pool socket (by
// cookie) and every host listener (by address), so a sweep of the host
// namespace's sockets finds their connections.
//
// The pool table holds every pool socket that still exists: the sweep
// forgets those the containers' witnesses no longer see (ForgetPool), so
// the table is as large as what the containers hold, which their quotas
// bound (the router's poolquota_linux.go), and never stops tracking new ones.
type Census struct {
	mu      sync.Mutex
	pool    map[uint64]*poolSocket
	conns   map[uint64]control.Connection
	at      time.Time // of the last update
	clients clientsState
}

// New returns an empty census.
func New() *Census {
	return &Census{pool: map[uint64]*poolSocket{}, conns: map[uint64]control.Connection{}, clients: newClientsState()}
}

// HandedOut records pool sockets given to a container.
func (c *Census) HandedOut(container string, cookies []uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cookie := range cookies {
		c.pool[cookie] = &poolSocket{container: container, handed: now}
	}
}

// ForgetPool drops the pool sockets of a container that no longer exist:
// those handed out before at that are not in alive, the cookies of the
// container's sockets that existed at at.
func (c *Census) ForgetPool(container string, alive map[uint64]bool, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for cookie, p := range c.pool {
		if p.container == container && p.handed.Before(at) && !alive[cookie] {
			delete(c.pool, cookie)
		}
	}
}

// Listener is a local accelerated listener as the census sees it.
type Listener struct {
	Container string
	Overlay   netip.AddrPort
}

// DirectoryView is what the census needs to know of the router's
// listeners and directory at the time of a sweep.
type DirectoryView struct {
	// LocalByHost maps a host listener's address to its listener.
	LocalByHost map[netip.AddrPort]Listener
	// OverlayOf maps any directory entry's host address to its overlay
	// address (local listeners and peers').
	OverlayOf map[netip.AddrPort]netip.AddrPort
	// ContainerAddr maps a container of this host to its overlay address.
	ContainerAddr map[string]netip.Addr
}

// Update replaces the connection table from a sweep of the host's sockets.
func (c *Census) Update(now time.Time, sockets []Socket, dir DirectoryView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	conns := map[uint64]control.Connection{}
	clientsByHost := map[netip.AddrPort]control.Connection{}
	var servers []Socket
	for _, s := range sockets {
		p, isPool := c.pool[s.Cookie]
		if s.State != sockdiag.Established {
			continue
		}
		switch {
		case isPool:
			conn := c.observed(now, s, control.Connection{
				Container: p.container, Role: control.RoleClient,
				Local: netip.AddrPortFrom(dir.ContainerAddr[p.container], s.Local.Port()),
				Peer:  dir.OverlayOf[s.Remote],
			})
			conns[s.Cookie] = conn
			clientsByHost[s.Local] = conn
		case dir.LocalByHost[s.Local].Container != "":
			servers = append(servers, s)
		}
	}
	for _, s := range servers {
		l := dir.LocalByHost[s.Local]
		conn := control.Connection{Container: l.Container, Role: control.RoleServer, Local: l.Overlay}
		// A client on this host: the other end of the same host connection.
		if client, ok := clientsByHost[s.Remote]; ok {
			conn.Peer, conn.PeerContainer = client.Local, client.Container
			if peer, ok := conns[client.Cookie]; ok {
				peer.PeerContainer = l.Container
				conns[client.Cookie] = peer
			}
		}
		conns[s.Cookie] = c.observed(now, s, conn)
	}
	c.setLocalClients(clientsByHost, dir)
	c.conns, c.at = conns, now
}

// observed completes a connection with the kernel's counters and the rates
// since the previous sweep.
func (c *Census) observed(now time.Time, s Socket, conn control.Connection) control.Connection {
	conn.Cookie, conn.PeerHost = s.Cookie, s.Remote
	conn.BytesIn, conn.BytesOut, conn.RTT = s.BytesIn, s.BytesOut, s.RTT
	conn.Since = now
	if prev, ok := c.conns[s.Cookie]; ok {
		conn.Since = prev.Since
		if dt := now.Sub(c.at).Seconds(); dt > 0 {
			conn.RateIn = float64(s.BytesIn-min(prev.BytesIn, s.BytesIn)) / dt
			conn.RateOut = float64(s.BytesOut-min(prev.BytesOut, s.BytesOut)) / dt
		}
	}
	return conn
}

// Connections lists the connections of the last sweep, newest first, with
// the overlay addresses of remote clients that their routers sent.
func (c *Census) Connections() []control.Connection {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := make([]control.Connection, 0, len(c.conns))
	for _, conn := range c.conns {
		list = append(list, c.withRemotePeer(conn))
	}
	slices.SortFunc(list, func(a, b control.Connection) int {
		if d := b.Since.Compare(a.Since); d != 0 {
			return d
		}
		return cmp.Compare(a.Cookie, b.Cookie)
	})
	return list
}

// DropContainer forgets the pool sockets handed to a container (it was
// unregistered) and returns their cookies.
func (c *Census) DropContainer(name string) map[uint64]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cookies := map[uint64]bool{}
	for cookie, p := range c.pool {
		if p.container == name {
			cookies[cookie] = true
			delete(c.pool, cookie)
		}
	}
	return cookies
}
