package bench

import (
	"encoding/json"
	"fmt"
	"strings"
)

// loadResult is what a fixed-load client reports about the measured part
// of its run.
type loadResult struct {
	// Completed is how many requests (operations, transactions,
	// messages) due in the measured part were answered; Achieved is how
	// many answers arrived during the measured part, per second (below
	// the offered rate when the server falls behind).
	Completed float64
	Achieved  float64
	// Unanswered counts requests due in the measured part that were
	// still unanswered when the client gave up waiting.
	Unanswered float64
	// Latency percentiles and mean in µs, measured from when each request
	// was due (open loop) or sent (closed loop).
	P50, P90, P99, P999, Max, Mean float64
	// LagP50 is the client's own median delay in sending a request after
	// it was due, in µs: part of every latency (0 if unknown).
	LagP50 float64
	// ServiceP50 is the median latency from when each request was sent,
	// in µs, as closed-loop tools measure it.
	ServiceP50 float64
}

// markerPrefix starts the lines with which slim-loadgen and the Kafka
// stand-in mark the measured part of their run, as it happens.
const markerPrefix = "slim-bench: measure "

// parseLoadResult reads the JSON line that slim-loadgen and the Kafka
// stand-in print last.
func parseLoadResult(out []byte) (loadResult, error) {
	lines := nonEmptyLines(out)
	var last string
	for i := len(lines) - 1; i >= 0 && last == ""; i-- {
		if strings.HasPrefix(lines[i], "{") {
			last = lines[i]
		}
	}
	if last == "" {
		return loadResult{}, fmt.Errorf("the client printed no JSON report: %s", tail(out))
	}
	var doc struct {
		Completed  *float64 `json:"completed"`
		Achieved   float64  `json:"achieved"`
		Unanswered float64  `json:"unanswered"`
		Latency    struct {
			P50, P90, P99, Max, Mean float64
			P999                     float64 `json:"p999"`
		} `json:"latency_us"`
		Lag struct {
			P50 float64 `json:"p50"`
		} `json:"send_lag_us"`
		Service struct {
			P50 float64 `json:"p50"`
		} `json:"service_us"`
	}
	if err := json.Unmarshal([]byte(last), &doc); err != nil {
		return loadResult{}, fmt.Errorf("reading the client's report %q: %w", last, err)
	}
	if doc.Completed == nil {
		return loadResult{}, fmt.Errorf("the client's report %q has no completed count", last)
	}
	l := doc.Latency
	r := loadResult{
		Completed: *doc.Completed, Achieved: doc.Achieved, Unanswered: doc.Unanswered,
		P50: l.P50, P90: l.P90, P99: l.P99, P999: l.P999, Max: l.Max, Mean: l.Mean,
		LagP50: doc.Lag.P50, ServiceP50: doc.Service.P50,
	}
	return r, r.check()
}

// check refuses a result that measured nothing or whose percentiles are
// out of order.
func (r loadResult) check() error {
	if r.Completed <= 0 {
		return fmt.Errorf("the client completed no request in the measured part")
	}
	if !(r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.P999 && r.P999 <= r.Max && r.ServiceP50 <= r.Max) {
		return fmt.Errorf("latency percentiles out of order: p50 %v, p90 %v, p99 %v, p99.9 %v, max %v", r.P50, r.P90, r.P99, r.P999, r.Max)
	}
	return nil
}
