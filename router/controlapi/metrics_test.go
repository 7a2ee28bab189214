package controlapi

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
)

func TestWriteMetrics(t *testing.T) {
	s := control.Snapshot{
		Containers:  []control.Container{{Name: "h1-c1", Listeners: 1}},
		Connections: []control.Connection{{Container: "h1-c1", BytesIn: 10, BytesOut: 20}},
		Shims:       control.ShimStats{Reports: 1, Fallbacks: map[string]uint64{"pool_empty": 2}, SetupBuckets: []uint64{0, 3, 1}},
	}
	var b bytes.Buffer
	WriteMetrics(&b, s)
	for _, want := range []string{
		`slim_accelerated_connections{container="h1-c1"} 1`,
		`slim_accelerated_listeners{container="h1-c1"} 1`,
		`slim_connection_bytes{container="h1-c1",direction="out"} 20`,
		`slim_fallbacks_total{reason="pool_empty"} 2`,
		`slim_setup_seconds_bucket{le="0.000002"} 3`,
		`slim_setup_seconds_bucket{le="+Inf"} 4`,
		`slim_setup_seconds_count 4`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

// TestWriteStoreMetrics: a router on a store exports its health; one
// without a store exports no store metrics.
func TestWriteStoreMetrics(t *testing.T) {
	written := time.Unix(1796212800, 0)
	s := control.Snapshot{Router: control.RouterHealth{Store: &control.StoreHealth{
		Backend: "etcd", Connected: true, Revision: 42, Members: 4, LastWrite: written, Pending: 2, Resyncs: 1,
	}}}
	var b bytes.Buffer
	WriteMetrics(&b, s)
	for _, want := range []string{
		`slim_store_connected{backend="etcd"} 1`,
		`slim_store_revision 42`,
		`slim_store_members 4`,
		`slim_store_last_write_timestamp_seconds 1796212800`,
		`slim_store_last_watch_timestamp_seconds 0`,
		`slim_store_pending_lists 2`,
		`slim_store_resyncs_total 1`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	WriteMetrics(&b, control.Snapshot{})
	if strings.Contains(b.String(), "slim_store_") {
		t.Errorf("metrics of a router without a store:\n%s", b.String())
	}
}
