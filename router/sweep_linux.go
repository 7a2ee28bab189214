package router

import (
	"time"

	"github.com/slimnet/slim/router/census"
)

// sweepHost is the router as its census's sweep sees it (census.Host).
type sweepHost struct{ router *Router }

// pendingFor is how long a listener may stay pending (no shim saw its app
// accept) before the sweep drops it: an app that accepts in ways the shim
// does not see (io_uring, raw syscalls) is reached over the overlay.
const pendingFor = time.Second

var _ census.Host = sweepHost{}

// DropGoneListeners drops the listeners whose host socket the kernel no
// longer has (the server exited), and those still pending after
// pendingFor. A listener added after the dump started is not in it, yet
// alive.
func (h sweepHost) DropGoneListeners(started time.Time, listening map[uint64]bool) {
	r := h.router
	gone := func(l listener) bool {
		return l.since().Before(started) && !listening[l.HostCookie] ||
			l.Pending && l.Added.Before(started.Add(-pendingFor))
	}
	if r.listeners.removeWhere(gone) {
		r.publish()
	}
}

// DirectoryView is the listeners, the directory and the containers now.
func (h sweepHost) DirectoryView() census.DirectoryView {
	view := h.router.listeners.directoryView()
	view.ContainerAddr = h.router.containers.addresses()
	return view
}

// CountPools counts each container's pool sockets (countPools).
func (h sweepHost) CountPools() { h.router.countPools() }

// countPools closes the batches made ahead that waited untaken for
// poolAheadIdle, counts each container's pool sockets, for its quota and
// the control API, and has the census forget those that are gone.
func (r *Router) countPools() {
	for _, c := range r.containers.list() {
		at := time.Now()
		c.pool.dropIdleAhead(at.Add(-poolAheadIdle))
		alive, err := c.pool.count(at)
		if err != nil {
			r.log.Warn("counting pool sockets", "container", c.Name, "err", err)
			continue
		}
		r.census.ForgetPool(c.Name, alive, at)
	}
}
