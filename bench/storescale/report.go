package storescale

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// Targets of the scale issue.
const (
	targetPropagationP99 = time.Second
	targetMemory         = 100 << 20
)

// percentile of durations (p in 0..100), nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// WriteText writes the report as a table, with the targets.
func (r *Report) WriteText(w io.Writer) {
	o := r.Options
	p := r.Propagation
	viewers := o.Hosts + o.FullRouters
	fmt.Fprintf(w, "store scale: %d routers x %d listeners = %d directory entries; etcd %s, %d member(s), in a scratch namespace of this machine\n",
		o.Hosts, o.Listeners, o.Hosts*o.Listeners, r.EtcdVersion, o.EtcdMembers)
	fmt.Fprintf(w, "fill: every router joined and published in %v; etcd holds %.0f keys, %s on disk\n",
		r.Fill.Round(time.Millisecond), r.Cluster.KeysTotal, mib(uint64(r.Cluster.DBBytes)))
	fmt.Fprintf(w, "a router joining with the whole directory (one read): p50 %s, max %s over %d joins\n\n",
		ms(percentile(r.FullJoins, 50)), ms(percentile(r.FullJoins, 100)), len(r.FullJoins))
	fmt.Fprintf(w, "propagation of one new listener, %d samples              p50        p99        max\n", len(p.Every))
	row := func(name string, ds []time.Duration) {
		fmt.Fprintf(w, "  %-52s %-10s %-10s %s\n", name, ms(percentile(ds, 50)), ms(percentile(ds, 99)), ms(percentile(ds, 100)))
	}
	row("committed in etcd (the publishing router's wait)", p.Committed)
	row(fmt.Sprintf("in every router's view (%d watches)", viewers), p.Every)
	row(fmt.Sprintf("in the full routers' state (%d)", o.FullRouters), p.FullState)
	if p.Missed > 0 {
		fmt.Fprintf(w, "  %d router views did not get a sample within %v (counted as %v)\n", p.Missed, sampleTimeout, sampleTimeout)
	}
	fmt.Fprintf(w, "\nper new listener: %.2f etcd writes, %.0f watch events sent by etcd (%.2f per router watching)\n",
		r.PerListener.Puts+r.PerListener.Txns, r.PerListener.Events, r.PerListener.Events/float64(viewers))
	fmt.Fprintf(w, "lease keep-alives: %.0f/s (%d routers, TTL %v)\n", r.KeepAlivesPS, viewers, o.TTL)
	r.writeMemory(w)
	r.writeLookups(w)
	r.writeTargets(w)
}

func (r *Report) writeMemory(w io.Writer) {
	pr := r.Probe
	where := "a process of its own"
	rss := mib(pr.RSS)
	if pr.InProcess {
		where, rss = "this process (heap growth)", "n/a"
	}
	fmt.Fprintf(w, "\nrouter memory with %d entries (%s): heap in use %s, RSS %s; its directory table %d slots (%s), rewritten in %s; its join took %s\n",
		pr.Listeners, where, mib(pr.HeapInuse), rss, pr.TableSlots, mib(uint64(pr.TableBytes)), ms(pr.TablePublish), ms(pr.Join))
}

func (r *Report) writeLookups(w io.Writer) {
	fmt.Fprintf(w, "\ndirectory table (router/directory; the shim reads it the same way)\n")
	fmt.Fprintf(w, "  %-9s %-8s %-12s %-10s %-10s %-14s %s\n", "entries", "slots", "rewrite", "hit", "miss", "slots/lookup", "with version 1's hash")
	for _, l := range r.Lookups {
		fmt.Fprintf(w, "  %-9d %-8d %-12s %-10s %-10s %-14.1f %.2f\n", l.Entries, l.Slots, ms(l.Publish),
			l.Hit.Round(10*time.Nanosecond), l.Miss.Round(10*time.Nanosecond), l.Probes, l.V1Probes)
	}
}

func (r *Report) writeTargets(w io.Writer) {
	p99 := percentile(r.Propagation.Every, 99)
	fmt.Fprintf(w, "\ntargets\n")
	fmt.Fprintf(w, "  propagation p99 < %v: %s (%s)\n", targetPropagationP99, verdict(p99 < targetPropagationP99), ms(p99))
	mem := r.Probe.RSS
	if r.Probe.InProcess {
		mem = r.Probe.HeapInuse
	}
	fmt.Fprintf(w, "  router memory < 100 MiB at %d entries: %s (%s)\n", r.Probe.Listeners, verdict(mem < targetMemory), mib(mem))
	if n := len(r.Lookups); n >= 2 {
		first, last := r.Lookups[0], r.Lookups[n-1]
		growth := float64(last.Hit) / float64(max(first.Hit, 1))
		fmt.Fprintf(w, "  lookup flat in the number of entries: %s (%.0fx from %d to %d entries)\n",
			verdict(growth < 3), growth, first.Entries, last.Entries)
	}
	fmt.Fprintf(w, "\nthe machine is shared (2 vCPUs, other work running): figures vary between runs\n")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// WriteLabComparison writes the static full mesh and etcd side by side.
func WriteLabComparison(w io.Writer, hosts int, rows []LabRow) {
	fmt.Fprintf(w, "real routers on a lab of %d hosts (one listener per host, then one new listener on h1 at a time)\n", hosts)
	fmt.Fprintf(w, "  %-8s %-34s %-10s %-10s %s\n", "store", "new listener: h1's table -> all", "p50", "p99", "restarted router: served -> peers' listeners in its table")
	for _, r := range rows {
		fmt.Fprintf(w, "  %-8s %-34s %-10s %-10s %s\n", r.Store, fmt.Sprintf("(%d samples)", len(r.Propagation)),
			ms(percentile(r.Propagation, 50)), ms(percentile(r.Propagation, 99)), ms(r.Restart))
	}
	fmt.Fprintf(w, "the machine is shared (2 vCPUs, other work running): figures vary between runs\n")
}
