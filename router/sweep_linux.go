package router

import (
	"context"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// sweepInterval is how often the router checks which host sockets it
// handed out still exist.
const sweepInterval = time.Second

const tcpListen = 10 // TCP_LISTEN in the kernel's state numbering

// sweep periodically drops listeners whose host socket the kernel no
// longer has (the server exited) and connections that are gone.
func (r *Router) sweep(ctx context.Context) {
	ticker := time.NewTicker(sweepInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			r.sweepOnce()
		}
	}
}

func (r *Router) sweepOnce() {
	started := time.Now()
	sockets, err := netlink.SocketDiagTCP(unix.AF_INET)
	if err != nil {
		r.log.Warn("listing host sockets", "err", err)
		return
	}
	alive := make(map[uint64]bool, len(sockets))
	listening := map[uint64]bool{}
	for _, s := range sockets {
		cookie := uint64(s.ID.Cookie[0]) | uint64(s.ID.Cookie[1])<<32
		alive[cookie] = true
		if s.State == tcpListen {
			listening[cookie] = true
		}
	}
	// A listener added after the dump started is not in it, yet alive.
	gone := func(l listener) bool { return l.Added.Before(started) && !listening[l.HostCookie] }
	if r.listeners.removeWhere(gone) {
		r.publish()
	}
	r.conns.retain(alive)
}
