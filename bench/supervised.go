package bench

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The supervised mode (Options.Supervised) measures the path of the
// programs the shim cannot preload: a Go client and server (bench/peer,
// built static by the bench) under `slim exec`, which runs them under its
// seccomp supervisor, beside the same Go programs without Slim (host,
// overlay), and beside a C twin of them (bench/peerc) dynamically linked,
// which `slim exec` preloads with the shim. The same C program built
// static runs under the supervisor too, so that the setup cost of the
// supervised path over the preloaded one is measured on one program.

// Columns of the supervised mode, in order.
const (
	columnHost        = "host"
	columnOverlay     = "overlay"
	columnPreloaded   = "preloaded"
	columnSupervised  = "supervised"
	columnSupervisedC = "supervised-c"
	// With --secure: the same under the secure routers.
	columnPreloadedSecure  = "preloaded-secure"
	columnSupervisedSecure = "supervised-secure"
	peerPort               = 7400
	peerTool               = "peer" // argv[0] that each column replaces by its program
	peerResultPrefix       = "result "
	microsPerSecond        = 1e6
	peerListeningToken     = "listening"
)

var (
	metricPeerStream     = Metric{ID: "peer_stream", Label: "stream", Unit: "Gb/s"}
	metricPeerRR         = Metric{ID: "peer_rr", Label: "RR", Unit: "trans/s"}
	metricPeerCRR        = Metric{ID: "peer_crr", Label: "CRR", Unit: "conn/s"}
	metricPeerConnection = Metric{ID: "peer_connection_us", Label: "time per connection (CRR)", Unit: "us"}
)

// peerTests are the rows of the supervised mode, in the order they run.
var peerTests = []test{
	{ID: "stream", Title: "peer stream", Metrics: []Metric{metricPeerStream}, measure: peerMeasure("stream", metricPeerStream)},
	{ID: "rr", Title: "peer RR", Metrics: []Metric{metricPeerRR}, measure: peerMeasure("rr", metricPeerRR)},
	{ID: "crr", Title: "peer CRR", Metrics: []Metric{metricPeerCRR, metricPeerConnection}, measure: peerMeasure("crr", metricPeerCRR)},
}

// PeerTestIDs lists the tests of the supervised mode, for --only.
func PeerTestIDs() []string {
	ids := make([]string, len(peerTests))
	for i, t := range peerTests {
		ids[i] = t.ID
	}
	return ids
}

// selectPeerTests returns the supervised mode's tests with the given IDs,
// in their usual order; all of them if ids is empty.
func selectPeerTests(ids []string) ([]test, error) {
	if len(ids) == 0 {
		return peerTests, nil
	}
	wanted := map[string]bool{}
	for _, id := range ids {
		wanted[id] = true
	}
	var selected []test
	for _, t := range peerTests {
		if wanted[t.ID] {
			selected = append(selected, t)
			delete(wanted, t.ID)
		}
	}
	for id := range wanted {
		return nil, fmt.Errorf("unknown test %q with --supervised (tests: %s)", id, strings.Join(PeerTestIDs(), ", "))
	}
	return selected, nil
}

// peerMeasure runs the peer's server and one client command against it;
// crr also yields the time per connection.
func peerMeasure(command string, metric Metric) func(ctx context.Context, s *sample) (map[string]float64, error) {
	return func(ctx context.Context, s *sample) (map[string]float64, error) {
		port := strconv.Itoa(peerPort)
		server := []string{peerTool, "serve", s.addr(), port}
		var rate float64
		err := s.withServer(ctx, server, printed(peerListeningToken), func() error {
			out, err := s.runClient(ctx, peerTool, command, s.addr(), port, seconds(s.duration))
			if err != nil {
				return err
			}
			rate, err = parsePeerResult(out)
			return err
		})
		if err != nil {
			return nil, err
		}
		values := map[string]float64{metric.ID: rate}
		if command == "crr" {
			values[metricPeerConnection.ID] = microsPerSecond / rate
		}
		return values, nil
	}
}

// parsePeerResult reads the "result RATE" line a peer client prints.
func parsePeerResult(out []byte) (float64, error) {
	for _, line := range nonEmptyLines(out) {
		if v, ok := strings.CutPrefix(line, peerResultPrefix); ok {
			rate, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || rate <= 0 || math.IsInf(rate, 0) {
				return 0, fmt.Errorf("peer printed %q: not a positive rate", line)
			}
			return rate, nil
		}
	}
	return 0, fmt.Errorf("peer printed no result line: %q", tail(out))
}

// supervisedNotes say what each column runs and the setup cost of the
// supervised path over the preloaded one, from the medians of the time
// per connection.
func supervisedNotes(r *Report) []string {
	notes := []string{
		"host, overlay: the Go peer (bench/peer, static) without Slim; preloaded: its C twin (bench/peerc), dynamically linked, under slim exec with the shim;",
		"supervised: the Go peer under slim exec (the seccomp supervisor); supervised-c: the C twin built static under slim exec (the supervisor); client and server alike",
	}
	if r.hasScenario(columnSupervisedSecure) {
		notes = append(notes, "preloaded-secure, supervised-secure: the C twin (preloaded) and the Go peer (supervised) under the secure routers")
	}
	var perConnection *MetricResult
	for _, m := range r.Metrics {
		if m.ID == metricPeerConnection.ID {
			perConnection = m
		}
	}
	if perConnection == nil {
		return notes
	}
	diff := func(a, b string) (float64, bool) {
		va, okA := perConnection.Median(a)
		vb, okB := perConnection.Median(b)
		return va - vb, okA && okB
	}
	if d, ok := diff(columnSupervisedC, columnPreloaded); ok {
		notes = append(notes, fmt.Sprintf("setup cost of the supervised path over the preloaded one (supervised-c - preloaded, the same C program): %+.1f us per connection", d))
	}
	if d, ok := diff(columnSupervised, columnOverlay); ok {
		notes = append(notes, fmt.Sprintf("Go connection setup under the supervisor against the overlay (supervised - overlay): %+.1f us per connection", d))
	}
	if d, ok := diff(columnSupervisedSecure, columnOverlay); ok {
		notes = append(notes, fmt.Sprintf("the same in secure mode (supervised-secure - overlay): %+.1f us per connection", d))
	}
	return notes
}

// validateSupervised checks the options of the supervised mode.
func (o Options) validateSupervised() error {
	switch {
	case o.Slim == "":
		return fmt.Errorf("the supervised mode needs the slim column")
	case o.FixedLoad:
		return fmt.Errorf("--supervised and --fixed-load are different modes")
	}
	_, err := selectPeerTests(o.Only)
	return err
}

// hasScenario says whether the report has the named column.
func (r *Report) hasScenario(name string) bool {
	for _, sc := range r.Scenarios {
		if sc.Name == name {
			return true
		}
	}
	return false
}
