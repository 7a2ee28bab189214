package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/slimnet/slim/lab"
)

// DefaultLabName is the lab the bench uses when none is given.
const DefaultLabName = "bench"

// Limits of the options.
const (
	MaxDuration = 10 * time.Minute
	MaxRuns     = 100
)

// Options configure a bench.
type Options struct {
	// LabName is the lab to run on. If it is not up, Run brings up a lab
	// of 2 hosts with 1 container each and takes it down at the end.
	LabName string
	// Duration is how long each sample's client runs, in whole seconds.
	Duration time.Duration
	// Runs is how many samples each test takes per scenario.
	Runs int
	// Only lists the IDs of the tests to run (see TestIDs); empty means
	// all of them.
	Only []string
	// Keep leaves a lab that Run brought up running at the end.
	Keep bool
	// Slim is the slim binary whose routers and `slim exec` the "slim"
	// column uses; empty leaves the column out.
	Slim string
	// Secure adds a "secure" column: the same tools under slim exec, in a
	// second container per host served by a second set of routers in
	// secure mode (needs Slim and a lab with 2 containers per host).
	Secure bool
	// Routed adds the anchor columns "routed" and, where the kernel has
	// netkit, "netkit": the tools in containers whose subnets are routed
	// between the hosts over the wire, no tunnel (lab.EnsureRouted); the
	// slim columns are compared with them as well as with the host.
	Routed bool
	// FixedLoad runs the fixed-load mode instead of the usual tests (see
	// FixedLoadIDs): each application's peak, then a fixed offered load of
	// LoadFraction times the overlay column's peak in every column, with
	// latency percentiles and CPU time per operation.
	FixedLoad    bool
	LoadFraction float64
	// Supervised runs the supervised mode instead (supervised.go): a Go
	// peer under the seccomp supervisor beside host, overlay and a C twin
	// under the shim (needs Slim; see PeerTestIDs).
	Supervised bool
	// Progress receives a line per sample while the bench runs; nil
	// discards them.
	Progress io.Writer
}

// Validate reports the first problem with the options.
func (o Options) Validate() error {
	if err := lab.ValidateName(o.LabName); err != nil {
		return err
	}
	if o.Duration < time.Second || o.Duration > MaxDuration || o.Duration%time.Second != 0 {
		return fmt.Errorf("duration must be a whole number of seconds from 1s to %v, not %v", MaxDuration, o.Duration)
	}
	if o.Runs < 1 || o.Runs > MaxRuns {
		return fmt.Errorf("runs must be from 1 to %d, not %d", MaxRuns, o.Runs)
	}
	if o.Secure && o.Slim == "" {
		return fmt.Errorf("the secure column needs the slim column")
	}
	if o.Supervised {
		return o.validateSupervised()
	}
	if !o.FixedLoad {
		_, err := selectTests(o.Only)
		return err
	}
	if !(o.LoadFraction > 0 && o.LoadFraction <= 1) {
		return fmt.Errorf("the fixed load must be a fraction of the overlay's peak above 0 and at most 1, not %v", o.LoadFraction)
	}
	_, err := selectFixedApps(o.Only)
	return err
}

// ParseOnly splits a comma-separated list of test IDs, as given to --only.
func ParseOnly(list string) []string {
	var ids []string
	for _, id := range strings.Split(list, ",") {
		if id = strings.ToLower(strings.TrimSpace(id)); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

func (o Options) progress() io.Writer {
	if o.Progress == nil {
		return io.Discard
	}
	return o.Progress
}

// seconds is the duration as tools take it on their command line.
func seconds(d time.Duration) string { return fmt.Sprint(int64(d / time.Second)) }
