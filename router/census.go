package router

import (
	"github.com/slimnet/slim/router/sockdiag"

	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/slimnet/slim/control"
)

// Bounds of the census's tables: they serve views, not the data path.
const (
	// maxPoolSockets bounds the pool sockets tracked; beyond it new ones
	// are not tracked (their connections do not show) until some close.
	maxPoolSockets = 1 << 16
	// poolUnusedTTL forgets a pool socket never seen in a sweep (handed
	// out, not connected yet) after this long.
	poolUnusedTTL = 10 * time.Minute
)

// hostSocket is one TCP socket of the host namespace as sock_diag shows it.
type hostSocket struct {
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
	seen      bool // the kernel listed it in a sweep (it was connected)
}

// census knows the accelerated connections of this host without any
// message on the data path: the router created every pool socket (by
// cookie) and every host listener (by address), so a sweep of the host
// namespace's sockets finds their connections.
type census struct {
	mu          sync.Mutex
	pool        map[uint64]*poolSocket
	poolDropped uint64 // pool sockets not tracked because the table was full
	conns       map[uint64]control.Connection
	at          time.Time // of the last update
	clients     clientsState
}

func newCensus() *census {
	return &census{pool: map[uint64]*poolSocket{}, conns: map[uint64]control.Connection{}, clients: newClientsState()}
}

// handedOut records pool sockets given to a container.
func (c *census) handedOut(container string, cookies []uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cookie := range cookies {
		if len(c.pool) >= maxPoolSockets {
			c.poolDropped++
			continue
		}
		c.pool[cookie] = &poolSocket{container: container, handed: now}
	}
}

// directoryView is what the census needs to know of the router's
// listeners and directory at the time of a sweep.
type directoryView struct {
	// localByHost maps a host listener's address to its listener.
	localByHost map[netip.AddrPort]listener
	// overlayOf maps any directory entry's host address to its overlay
	// address (local listeners and peers').
	overlayOf map[netip.AddrPort]netip.AddrPort
	// containerAddr maps a container of this host to its overlay address.
	containerAddr map[string]netip.Addr
}

// update replaces the connection table from a sweep of the host's sockets.
func (c *census) update(now time.Time, sockets []hostSocket, dir directoryView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	alive := make(map[uint64]bool, len(sockets))
	conns := map[uint64]control.Connection{}
	clientsByHost := map[netip.AddrPort]control.Connection{}
	var servers []hostSocket
	for _, s := range sockets {
		alive[s.Cookie] = true
		p, isPool := c.pool[s.Cookie]
		if isPool {
			p.seen = true
		}
		if s.State != sockdiag.Established {
			continue
		}
		switch {
		case isPool:
			conn := c.observed(now, s, control.Connection{
				Container: p.container, Role: control.RoleClient,
				Local: netip.AddrPortFrom(dir.containerAddr[p.container], s.Local.Port()),
				Peer:  dir.overlayOf[s.Remote],
			})
			conns[s.Cookie] = conn
			clientsByHost[s.Local] = conn
		case dir.localByHost[s.Local].Container != "":
			servers = append(servers, s)
		}
	}
	for _, s := range servers {
		l := dir.localByHost[s.Local]
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
	for cookie, p := range c.pool {
		if (p.seen && !alive[cookie]) || (!p.seen && now.Sub(p.handed) > poolUnusedTTL) {
			delete(c.pool, cookie)
		}
	}
	c.setLocalClients(clientsByHost, dir)
	c.conns, c.at = conns, now
}

// observed completes a connection with the kernel's counters and the rates
// since the previous sweep.
func (c *census) observed(now time.Time, s hostSocket, conn control.Connection) control.Connection {
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

// connections lists the connections of the last sweep, newest first, with
// the overlay addresses of remote clients that their routers sent.
func (c *census) connections() []control.Connection {
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

// poolCounts is the number of tracked pool sockets by container.
func (c *census) poolCounts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := map[string]int{}
	for _, p := range c.pool {
		counts[p.container]++
	}
	return counts
}
