package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// pgbenchTransaction is one line of pgbench's per-transaction log (-l):
// "client_id transaction_no time script_no time_epoch time_us
// [schedule_lag]", times in µs.
type pgbenchTransaction struct {
	end     time.Time     // when it completed
	latency time.Duration // from when it was due (--rate) or started
	lag     time.Duration // from when it was due to when it started
}

// parsePgbenchLog reads a per-transaction log. With --rate, pgbench logs
// the lag between a transaction's scheduled and actual start apart from
// its latency; the latency counted here is their sum, measured from when
// the transaction was due.
func parsePgbenchLog(data []byte) ([]pgbenchTransaction, error) {
	var txs []pgbenchTransaction
	for n, line := range nonEmptyLines(data) {
		fields := strings.Fields(line)
		if len(fields) != 6 && len(fields) != 7 {
			return nil, fmt.Errorf("pgbench log line %d %q: want 6 or 7 fields", n+1, line)
		}
		var v [7]int64
		for i, f := range fields {
			x, err := strconv.ParseInt(f, 10, 64)
			if err != nil || x < 0 {
				return nil, fmt.Errorf("pgbench log line %d %q: field %d is not a count of µs (a skipped or failed transaction?)", n+1, line, i+1)
			}
			v[i] = x
		}
		us := func(x int64) time.Duration { return time.Duration(x) * time.Microsecond }
		txs = append(txs, pgbenchTransaction{
			end:     time.Unix(v[4], v[5]*1000),
			latency: us(v[2] + v[6]),
			lag:     us(v[6]),
		})
	}
	return txs, nil
}

// summarizeTransactions reports the transactions that completed in
// [from, until]: their latencies, and their rate over the window from
// from to the last of them.
func summarizeTransactions(txs []pgbenchTransaction, from, until time.Time) (loadResult, error) {
	if !until.After(from) {
		return loadResult{}, fmt.Errorf("empty measuring window (%v to %v)", from, until)
	}
	latency, lag, service := newHistogram(), newHistogram(), newHistogram()
	last := from
	for _, tx := range txs {
		if tx.end.Before(from) || tx.end.After(until) {
			continue
		}
		latency.add(uint64(tx.latency))
		lag.add(uint64(tx.lag))
		service.add(uint64(tx.latency - tx.lag))
		if tx.end.After(last) {
			last = tx.end
		}
	}
	window := last.Sub(from).Seconds()
	if window <= 0 {
		window = until.Sub(from).Seconds()
	}
	us := func(ns uint64) float64 { return float64(ns) / 1e3 }
	r := loadResult{
		Completed:  float64(latency.count),
		Achieved:   float64(latency.count) / window,
		P50:        us(latency.percentile(50)),
		P90:        us(latency.percentile(90)),
		P99:        us(latency.percentile(99)),
		P999:       us(latency.percentile(99.9)),
		Max:        us(latency.max),
		Mean:       latency.mean() / 1e3,
		LagP50:     us(lag.percentile(50)),
		ServiceP50: us(service.percentile(50)),
	}
	return r, r.check()
}
