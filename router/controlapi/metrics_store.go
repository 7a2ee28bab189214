package controlapi

import (
	"fmt"
	"io"
	"time"

	"github.com/slimnet/slim/control"
)

// writeStoreMetrics writes the cluster store's health (docs/cluster.md).
func writeStoreMetrics(w io.Writer, metric func(name, kind, help string), h control.StoreHealth) {
	metric("slim_store_connected", "gauge", "1 if the cluster store answered the router's last call.")
	fmt.Fprintf(w, "slim_store_connected{backend=%q} %d\n", h.Backend, boolInt(h.Connected))
	metric("slim_store_revision", "gauge", "The store's revision of the state the router serves.")
	fmt.Fprintf(w, "slim_store_revision %d\n", h.Revision)
	metric("slim_store_members", "gauge", "Hosts of the cluster in the router's state.")
	fmt.Fprintf(w, "slim_store_members %d\n", h.Members)
	for _, t := range []struct {
		name, help string
		at         time.Time
	}{
		{"slim_store_last_write_timestamp_seconds", "When the store last took a write of this host (0: never).", h.LastWrite},
		{"slim_store_last_watch_timestamp_seconds", "When the store last sent the router state (0: never).", h.LastWatch},
		{"slim_store_last_renewal_timestamp_seconds", "When the store last renewed this host's leases (0: never).", h.LastRenewal},
	} {
		metric(t.name, "gauge", t.help)
		fmt.Fprintf(w, "%s %d\n", t.name, unixOrZero(t.at))
	}
	metric("slim_store_pending_lists", "gauge", "Lists of this host's listeners published since the last the store took (retried).")
	fmt.Fprintf(w, "slim_store_pending_lists %d\n", h.Pending)
	metric("slim_store_resyncs_total", "counter", "Full re-reads of the store (after a compaction or a lost lease).")
	fmt.Fprintf(w, "slim_store_resyncs_total %d\n", h.Resyncs)
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
