package router

import (
	"context"
	"log/slog"
	"time"
)

// A router on a cluster store saves the state it applied (the peers it
// routes, their listeners: clusterCache) so that it can start from it
// when the store does not answer at its next start.

// toSave hands the latest state applied to keepSaved.
func (link *ClusterLink) toSave(c *clusterCache) {
	link.saveMu.Lock()
	link.unsaved = c
	link.saveMu.Unlock()
	select {
	case link.saveWake <- struct{}{}:
	default:
	}
}

// saveInterval is the least time between two saves of the cluster state
// (a change of 100k listeners is a few MB to write).
const saveInterval = time.Second

// keepSaved writes the latest state applied to DIR/cluster.json, at most
// once per saveInterval, and once more when ctx ends.
func (link *ClusterLink) keepSaved(ctx context.Context, log *slog.Logger) {
	save := func() {
		link.saveMu.Lock()
		c := link.unsaved
		link.unsaved = nil
		link.saveMu.Unlock()
		if c != nil {
			if err := c.save(link.cachePath); err != nil {
				log.Warn("saving the cluster state", "err", err)
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			save()
			return
		case <-link.saveWake:
		}
		save()
		select {
		case <-ctx.Done():
			save()
			return
		case <-time.After(saveInterval):
		}
	}
}
