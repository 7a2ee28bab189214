package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// iperf3Result is what the bench takes from an iperf3 client's report.
type iperf3Result struct {
	BitsPerSecond float64 // as received by the server
	BytesReceived float64
}

// parseIperf3 reads the JSON report of an iperf3 client run with -J.
func parseIperf3(data []byte) (iperf3Result, error) {
	var report struct {
		End struct {
			SumReceived *struct {
				Bytes         float64 `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(data, &report); err != nil {
		return iperf3Result{}, fmt.Errorf("reading iperf3 JSON report: %w", err)
	}
	if report.Error != "" {
		return iperf3Result{}, fmt.Errorf("iperf3: %s", report.Error)
	}
	sum := report.End.SumReceived
	if sum == nil {
		return iperf3Result{}, errors.New("iperf3 report has no end.sum_received")
	}
	if sum.BitsPerSecond <= 0 || sum.Bytes <= 0 {
		return iperf3Result{}, fmt.Errorf("iperf3 received nothing (%v bytes, %v bit/s)", sum.Bytes, sum.BitsPerSecond)
	}
	return iperf3Result{BitsPerSecond: sum.BitsPerSecond, BytesReceived: sum.Bytes}, nil
}

// parseNetperfValues reads the output of netperf run with -P 0 and
// -- -o FIELD,…: one comma-separated line holding the want values.
func parseNetperfValues(data []byte, want int) ([]float64, error) {
	lines := nonEmptyLines(data)
	if len(lines) == 0 {
		return nil, errors.New("netperf printed nothing")
	}
	last := lines[len(lines)-1]
	fields := strings.Split(last, ",")
	if len(fields) != want {
		return nil, fmt.Errorf("netperf printed %q, want %d comma-separated values", last, want)
	}
	values := make([]float64, want)
	for i, f := range fields {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("netperf printed %q: value %d is not a number", last, i+1)
		}
		values[i] = v
	}
	return values, nil
}

// parseWrk reads the requests per second from wrk's report, refusing a
// run in which any response was not a success.
func parseWrk(data []byte) (float64, error) {
	rate, found := -1.0, false
	for _, line := range nonEmptyLines(data) {
		if n, ok := strings.CutPrefix(line, "Non-2xx or 3xx responses:"); ok {
			return 0, fmt.Errorf("wrk got %s error responses", strings.TrimSpace(n))
		}
		if v, ok := strings.CutPrefix(line, "Requests/sec:"); ok {
			var err error
			if rate, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
				return 0, fmt.Errorf("wrk printed %q: not a rate", line)
			}
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("wrk printed no Requests/sec line: %s", tail(data))
	}
	if rate <= 0 {
		return 0, errors.New("wrk completed no requests")
	}
	return rate, nil
}

// parseMemcaslap reads the operations per second from the final line of
// memcaslap's report, "Run time: 2.0s Ops: 150461 TPS: 75149 Net_rate: …".
func parseMemcaslap(data []byte) (float64, error) {
	lines := nonEmptyLines(data)
	for i := len(lines) - 1; i >= 0; i-- {
		if !strings.HasPrefix(lines[i], "Run time:") {
			continue
		}
		fields := strings.Fields(lines[i])
		for j := 0; j+1 < len(fields); j++ {
			if fields[j] != "TPS:" {
				continue
			}
			tps, err := strconv.ParseFloat(fields[j+1], 64)
			if err != nil {
				return 0, fmt.Errorf("memcaslap printed %q: TPS is not a number", lines[i])
			}
			if tps <= 0 {
				return 0, errors.New("memcaslap completed no operations")
			}
			return tps, nil
		}
		return 0, fmt.Errorf("memcaslap printed %q: no TPS", lines[i])
	}
	return 0, fmt.Errorf("memcaslap printed no result line: %s", tail(data))
}

// parseCPUBusy reads the busy time of all CPUs together, in clock ticks,
// from the text of /proc/stat: user+nice+system+irq+softirq+steal of its
// "cpu" line (idle and iowait are not busy; guest time is already counted
// in user).
func parseCPUBusy(data []byte) (uint64, error) {
	for _, line := range nonEmptyLines(data) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "cpu" {
			continue
		}
		if len(fields) < 9 {
			return 0, fmt.Errorf("/proc/stat cpu line %q is too short", line)
		}
		var busy uint64
		// 1 user, 2 nice, 3 system, 4 idle, 5 iowait, 6 irq, 7 softirq, 8 steal.
		for _, i := range []int{1, 2, 3, 6, 7, 8} {
			v, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat cpu line %q: field %d is not a number", line, i)
			}
			busy += v
		}
		return busy, nil
	}
	return 0, errors.New("/proc/stat has no cpu line")
}

func nonEmptyLines(data []byte) []string {
	var lines []string
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		if line := strings.TrimSpace(scanner.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// tail is the end of a tool's output on one line, for error messages.
func tail(data []byte) string {
	const max = 300
	text := strings.Join(strings.Fields(string(data)), " ")
	if len(text) > max {
		cut := len(text) - max
		for cut < len(text) && !utf8.RuneStart(text[cut]) {
			cut++
		}
		text = "…" + text[cut:]
	}
	if text == "" {
		return "(no output)"
	}
	return text
}

// parsePgbenchTPS reads the transaction rate from pgbench's summary: its
// first "tps = N (…)" line, which with -C includes the connections' setup
// ("including reconnection times"; before PostgreSQL 14, "including
// connections establishing").
func parsePgbenchTPS(data []byte) (float64, error) {
	for _, line := range nonEmptyLines(data) {
		v, ok := strings.CutPrefix(line, "tps = ")
		if !ok {
			continue
		}
		number, _, _ := strings.Cut(v, " ")
		rate, err := strconv.ParseFloat(number, 64)
		if err != nil {
			return 0, fmt.Errorf("pgbench printed %q: not a rate", line)
		}
		if rate <= 0 {
			return 0, errors.New("pgbench completed no transactions")
		}
		return rate, nil
	}
	return 0, fmt.Errorf("pgbench printed no tps line: %s", tail(data))
}
