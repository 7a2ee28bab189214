package storescale

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/cluster/etcd"
	"github.com/slimnet/slim/router/directory"
)

// probeTimeout bounds the probe's wait for the whole directory.
const probeTimeout = 5 * time.Minute

// ProbeRequest tells the probe process which cluster to join.
type ProbeRequest struct {
	Etcd     etcd.Config     `json:"etcd"`
	ID       string          `json:"id"`
	Underlay netip.Addr      `json:"underlay"`
	Network  cluster.Network `json:"network"`
	Expect   int             `json:"expect"` // listeners to wait for
}

// ProbeResult is one router's cost with the whole directory.
type ProbeResult struct {
	InProcess    bool          `json:"in_process"` // heap growth only, no RSS
	Join         time.Duration `json:"join"`       // join, with the first full read
	Listeners    int           `json:"listeners"`
	HeapInuse    uint64        `json:"heap_inuse"`
	RSS          uint64        `json:"rss"`
	TableSlots   int           `json:"table_slots"`
	TableBytes   int           `json:"table_bytes"`
	TablePublish time.Duration `json:"table_publish"`
}

// Probe is the probe process (slim bench --store-scale-probe FILE): it
// joins like a router, waits for the whole directory, writes it into a
// directory table big enough, and reports its memory as JSON on out.
func Probe(requestPath string, out io.Writer) error {
	data, err := os.ReadFile(requestPath)
	if err != nil {
		return err
	}
	var req ProbeRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return fmt.Errorf("probe request: %w", err)
	}
	result, err := probe(req, filepath.Dir(requestPath))
	if err != nil {
		return err
	}
	result.RSS = rss()
	return json.NewEncoder(out).Encode(result)
}

// probe joins, waits for the directory and fills a table under dir.
func probe(req ProbeRequest, dir string) (ProbeResult, error) {
	store, err := etcd.New(req.Etcd)
	if err != nil {
		return ProbeResult{}, err
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	start := time.Now()
	if _, err := store.Join(ctx, cluster.Self{ID: req.ID, Underlay: req.Underlay, Network: req.Network}); err != nil {
		return ProbeResult{}, err
	}
	r := ProbeResult{Join: time.Since(start)}
	state, err := waitForListeners(ctx, store, req.Expect)
	if err != nil {
		return r, err
	}
	r.Listeners = state.ListenerCount()
	table, err := publishTable(filepath.Join(dir, "probe-directory"), req.Network.Overlay, state.Directory(""), &r)
	if err != nil {
		return r, err
	}
	defer table.Close()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.HeapInuse = ms.HeapInuse
	runtime.KeepAlive(state)
	return r, nil
}

func waitForListeners(ctx context.Context, store *etcd.Store, expect int) (*cluster.State, error) {
	for {
		state, changed := store.State()
		if state.ListenerCount() >= expect {
			return state, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("probe: %d of %d listeners after %v", state.ListenerCount(), expect, probeTimeout)
		}
	}
}

// publishTable writes entries into a directory table with room for them
// (the shim's layout; a router's table grows to that size as it fills).
func publishTable(path string, overlay netip.Prefix, ls []cluster.Listener, r *ProbeResult) (*directory.Table, error) {
	entries := toEntries(ls)
	r.TableSlots = directory.CapacityFor(len(entries))
	r.TableBytes = directory.Size(r.TableSlots)
	table, err := directory.Open(path, r.TableSlots, overlay)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := table.Publish(entries); err != nil {
		table.Close()
		return nil, err
	}
	r.TablePublish = time.Since(start)
	return table, nil
}

func toEntries(ls []cluster.Listener) []directory.Entry {
	es := make([]directory.Entry, len(ls))
	for i, l := range ls {
		es[i] = directory.Entry{Overlay: l.Overlay, Host: l.Host}
	}
	return es
}

// rss is this process's resident memory (VmRSS).
func rss() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// runProbe measures one router's memory: in a process of its own in the
// scratch namespace if the options name a binary, else in this process
// (heap growth only).
func (sim *simulation) runProbe(ctx context.Context, dir string) (ProbeResult, error) {
	cfg, err := sim.config("probe", false)
	if err != nil {
		return ProbeResult{}, err
	}
	req := ProbeRequest{
		Etcd: cfg, ID: "probe", Underlay: sim.self(sim.opts.Hosts+sim.opts.FullRouters, "probe").Underlay,
		Network: sim.network, Expect: sim.opts.Hosts * sim.opts.Listeners,
	}
	if sim.opts.Probe == "" {
		return sim.probeInProcess(req, dir)
	}
	path := filepath.Join(dir, "probe.json")
	data, _ := json.Marshal(req)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return ProbeResult{}, err
	}
	cmd := exec.CommandContext(ctx, sim.opts.Probe, "bench", "--store-scale-probe", path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := sim.scratch.Namespace.Do(cmd.Start); err != nil {
		return ProbeResult{}, err
	}
	if err := cmd.Wait(); err != nil {
		return ProbeResult{}, fmt.Errorf("memory probe: %v: %s", err, out.String())
	}
	var r ProbeResult
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		return r, fmt.Errorf("memory probe said %q: %w", out.String(), err)
	}
	return r, nil
}

func (sim *simulation) probeInProcess(req ProbeRequest, dir string) (ProbeResult, error) {
	req.Etcd.Dial = sim.scratch.Dial
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	r, err := probe(req, dir)
	if r.HeapInuse > before.HeapInuse {
		r.HeapInuse -= before.HeapInuse
	}
	r.InProcess = true
	return r, err
}
