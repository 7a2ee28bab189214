package router

import (
	"context"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/controlapi"
	"github.com/slimnet/slim/router/protocol"
)

// serveControl serves the control API and the metrics until ctx is done
// (package controlapi).
func (r *Router) serveControl(ctx context.Context) error {
	api := &control.Server{Source: control.SourceFunc(r.Snapshot), Policy: policyAPI{r}, Containers: containerAPI{r}, Log: r.log}
	s := &controlapi.Server{Control: r.control, API: api, Metrics: r.metrics, Log: r.log}
	return s.Run(ctx)
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
	if r.clusterLink != nil {
		store := control.StoreHealth(r.clusterLink.Store.Health())
		health.Store = &store
	}
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
	for _, c := range r.containers.list() {
		snap.Containers = append(snap.Containers, c.view())
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
