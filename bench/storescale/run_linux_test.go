package storescale

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/internal/etcdrun"
	"github.com/slimnet/slim/internal/testenv"
)

// TestIntegrationStoreScaleSmall runs the benchmark at a small size and
// checks what a reader of its table relies on: every sample reached every
// router, each new listener was one etcd write and one event per router
// watching, the probe held the whole directory, and the table shows it.
func TestIntegrationStoreScaleSmall(t *testing.T) {
	testenv.Integration(t)
	testenv.Tools(t, etcdrun.Binary)
	opts := Options{Hosts: 8, Listeners: 5, Samples: 5, FullRouters: 2, EtcdMembers: 1, TTL: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	p := r.Propagation
	if len(p.Every) != opts.Samples || p.Missed != 0 {
		t.Errorf("%d samples, %d views missed one", len(p.Every), p.Missed)
	}
	viewers := float64(opts.Hosts + opts.FullRouters)
	if r.PerListener.Puts != 1 || r.PerListener.Events < viewers {
		t.Errorf("per new listener: %.2f writes, %.1f events (want 1 and >= %.0f)", r.PerListener.Puts, r.PerListener.Events, viewers)
	}
	if want := opts.Hosts * opts.Listeners; r.Probe.Listeners < want || r.Probe.HeapInuse == 0 {
		t.Errorf("probe: %d listeners (want %d), heap %d", r.Probe.Listeners, want, r.Probe.HeapInuse)
	}
	var out bytes.Buffer
	r.WriteText(&out)
	for _, want := range []string{"in every router's view (10 watches)", "router memory with", "targets"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
