package router

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// reserve answers RESERVE: a container's TCP socket, bound to a port of
// its overlay address (or of all its addresses), is about to listen. Its
// overlay address gets a pending entry without a host listener, unless it
// has an entry already, and the reply comes once the peers have it. A
// client that connects between the socket's listen() and the LISTEN that
// follows then waits for the listener to be armed, as it does for any
// pending one, instead of finding no entry and taking the overlay for the
// connection's life (docs/datapath.md, "Listen and accept"). The LISTEN
// replaces the entry; one that never comes leaves it to the sweep (a
// pending entry goes after a second), or to an UNLISTEN of the socket.
func (r *Router) reserve(c *container, app int) (protocol.Message, []int, error) {
	overlayAddr, appCookie, family, flags, err := r.checkAppSocket(c, app, protocol.TypeReserve)
	if err != nil {
		return protocol.Message{}, nil, err
	}
	if overlayAddr.Port() == 0 {
		return protocol.Message{}, nil, refuse(unix.EINVAL, "RESERVE: the socket is not bound to a port")
	}
	l := listener{Container: c.Name, Overlay: overlayAddr, Host: netip.AddrPortFrom(r.self.Underlay, 0), Family: family,
		Flags: flags, AppCookie: appCookie, Added: time.Now(), Pending: true}
	if r.listeners.reserve(l) {
		r.publish()
		r.cluster.WaitPublished(r.listeners.currentVersion())
		r.log.Debug("reserved listener", "container", c.Name, "overlay", overlayAddr)
	}
	return protocol.Message{Type: protocol.TypeOK}, nil, nil
}
