package controlapi

import (
	"bytes"
	"strings"
	"testing"

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
