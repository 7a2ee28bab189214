package router

import (
	"context"
	"time"

	"github.com/slimnet/slim/router/sockdiag"
)

// sweepInterval is how often the router checks which host sockets it
// handed out still exist, and counts their bytes for the control API.
const sweepInterval = time.Second

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
	// One sock_diag dump of the host namespace's live sockets (TIME_WAIT,
	// by far the most numerous on a busy host, left out by the kernel)
	// with their cookies and tcp_info (bytes, RTT).
	dump, err := sockdiag.TCP(sockdiag.Live)
	r.sweepMu.Lock()
	r.sweepErr = err
	if err == nil {
		r.lastSweep = started
	}
	r.sweepMu.Unlock()
	if err != nil {
		r.log.Warn("listing host sockets", "err", err)
		return
	}
	sockets := make([]hostSocket, 0, len(dump))
	listening := map[uint64]bool{}
	for _, d := range dump {
		s := hostSocketOf(d)
		sockets = append(sockets, s)
		if s.State == sockdiag.Listen {
			listening[s.Cookie] = true
		}
	}
	// A listener added after the dump started is not in it, yet alive.
	gone := func(l listener) bool { return l.Added.Before(started) && !listening[l.HostCookie] }
	if r.listeners.removeWhere(gone) {
		r.publish()
	}
	view := r.listeners.directoryView()
	view.containerAddr = r.containers.addresses()
	r.census.update(started, sockets, view)
	r.countPools()
}

// countPools counts each container's pool sockets, for its quota and the
// control API, and has the census forget those that are gone.
func (r *Router) countPools() {
	for _, c := range r.containers.list() {
		at := time.Now()
		alive, err := c.pool.count(at)
		if err != nil {
			r.log.Warn("counting pool sockets", "container", c.Name, "err", err)
			continue
		}
		r.census.forgetPool(c.Name, alive, at)
	}
}

// hostSocketOf converts one sock_diag answer.
func hostSocketOf(d sockdiag.Socket) hostSocket {
	return hostSocket{
		Cookie: d.Cookie, State: d.State, Local: d.Local, Remote: d.Remote,
		BytesIn: d.BytesReceived, BytesOut: d.BytesAcked, RTT: d.RTT,
	}
}
