package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/protocol"
)

// listenControl opens the control socket: mode 0600 (root only), or 0660
// with the given group. Like the shim socket, a stale one is replaced and
// a served one is left alone.
func listenControl(path, group string) (net.Listener, error) {
	if conn, err := net.Dial("unix", path); err == nil {
		conn.Close()
		return nil, fmt.Errorf("another router is serving %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale control socket %s: %w", path, err)
	}
	gid, mode := -1, os.FileMode(0o600)
	if group != "" {
		var err error
		if gid, err = lookupGroup(group); err != nil {
			return nil, fmt.Errorf("control socket group: %w", err)
		}
		mode = 0o660
	}
	// The socket is created with the umask's mode: make it private from
	// the start, not only after the chmod.
	old := unix.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on control socket %s: %w", path, err)
	}
	l.SetUnlinkOnClose(true)
	if gid >= 0 {
		if err := os.Chown(path, 0, gid); err != nil {
			l.Close()
			return nil, fmt.Errorf("control socket %s: %w", path, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return l, nil
}

func lookupGroup(group string) (int, error) {
	if gid, err := strconv.Atoi(group); err == nil {
		return gid, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

func (r *Router) serveControl(ctx context.Context) {
	s := &control.Server{Source: control.SourceFunc(r.Snapshot), Policy: policyAPI{r}, Log: r.log}
	if err := s.Serve(ctx, r.control); err != nil {
		r.log.Error("control API stopped", "err", err)
	}
}

// Snapshot is the router's state for the control API.
func (r *Router) Snapshot() control.Snapshot {
	now := time.Now()
	lastSweep, sweepErr := r.sweeper.Status()
	health := control.RouterHealth{
		Version: r.version, Host: r.self.Underlay, Subnet: r.self.Subnet,
		Started: r.started, Uptime: now.Sub(r.started), LastSweep: lastSweep,
		InsecurePeers: r.config.UnauthenticatedPeers(),
	}
	if sweepErr != nil {
		health.SweepErr = sweepErr.Error()
	}
	health.Secure = r.mode.events()
	snap := control.Snapshot{
		Time:        now,
		Router:      health,
		Connections: r.census.Connections(),
		Shims:       r.shimStats.View(now),
		Policy:      r.policyRules(),
	}
	for _, p := range r.cluster.Peers() {
		p.Listeners = r.listeners.remoteCount(p.Host)
		snap.Peers = append(snap.Peers, p)
	}
	listeners, _ := r.listeners.snapshot()
	perContainer := map[string]*control.Container{}
	for _, c := range r.config.Containers {
		snap.Containers = append(snap.Containers, control.Container{Name: c.Name, Addr: netip.MustParseAddr(c.Addr)})
	}
	for i := range snap.Containers {
		perContainer[snap.Containers[i].Name] = &snap.Containers[i]
	}
	for _, l := range listeners {
		snap.Listeners = append(snap.Listeners, control.Listener{Container: l.Container, Overlay: l.Overlay, Host: l.Host, Since: l.Added})
		if c := perContainer[l.Container]; c != nil {
			c.Listeners++
		}
	}
	for _, conn := range snap.Connections {
		if c := perContainer[conn.Container]; c != nil {
			c.Connections++
		}
	}
	for _, ct := range r.containers.list() {
		if c := perContainer[ct.Name]; c != nil {
			v := ct.pool.view()
			c.PoolSockets, c.PoolQuota, c.PoolRefused = v.held, v.quota, v.refused
			c.ShimSetups, c.ShimFallbacks = r.shimStats.ContainerView(ct.Name)
		}
	}
	return snap
}

// recordStats adds a container's STATS message to the totals, crediting
// its setups against the pool sockets the container was handed.
func (r *Router) recordStats(c *container, payload []byte) error {
	st, err := protocol.DecodeStats(payload)
	if err != nil {
		r.shimStats.Refuse()
		return err
	}
	return r.shimStats.Add(time.Now(), c.Name, st, c.pool.creditSetups)
}
