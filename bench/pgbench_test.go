package bench

import (
	"math"
	"testing"
	"time"
)

func TestParsePgbenchLog(t *testing.T) {
	// With --rate: a seventh field, the schedule lag.
	log := "0 1 350 0 1700000000 100000 20\n1 1 400 0 1700000000 200000 0\n"
	txs, err := parsePgbenchLog([]byte(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(txs) != 2 {
		t.Fatalf("%d transactions", len(txs))
	}
	if txs[0].latency != 370*time.Microsecond || txs[0].lag != 20*time.Microsecond {
		t.Errorf("latency %v lag %v: want 370µs from when due, 20µs lag", txs[0].latency, txs[0].lag)
	}
	if want := time.Unix(1700000000, 100000*1000); !txs[0].end.Equal(want) {
		t.Errorf("end %v, want %v", txs[0].end, want)
	}
	// Without --rate: six fields, no lag.
	if txs, err := parsePgbenchLog([]byte("3 9 500 0 1700000000 5\n")); err != nil || txs[0].latency != 500*time.Microsecond || txs[0].lag != 0 {
		t.Errorf("closed loop: %+v, %v", txs, err)
	}
	for _, bad := range []string{"0 1 skipped 0 1700000000 100000 20\n", "0 1 350 0\n", "0 1 -5 0 1 2\n"} {
		if _, err := parsePgbenchLog([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSummarizeTransactions(t *testing.T) {
	start := time.Unix(1700000000, 0)
	var txs []pgbenchTransaction
	// One transaction every 10 ms for 3 s, latency 1 ms; the first second
	// is the warm-up, outside the window.
	for i := 0; i < 300; i++ {
		txs = append(txs, pgbenchTransaction{end: start.Add(time.Duration(i) * 10 * time.Millisecond),
			latency: time.Millisecond + time.Duration(i%10)*time.Microsecond, lag: 100 * time.Microsecond})
	}
	r, err := summarizeTransactions(txs, start.Add(time.Second), start.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if r.Completed != 200 {
		t.Errorf("%v completed in the window, want 200", r.Completed)
	}
	// 200 transactions from 1.00 s to 2.99 s: the rate over the window
	// that ends at the last of them, not at its far end.
	if math.Abs(r.Achieved-200/1.99) > 0.01 {
		t.Errorf("achieved %v, want %v", r.Achieved, 200/1.99)
	}
	if r.P50 < 1000*(1-1.0/128) || r.P50 > 1010*(1+1.0/128) || r.ServiceP50 > r.P50 || math.Abs(r.LagP50-100) > 100.0/128 {
		t.Errorf("p50 %v, from send %v, lag %v", r.P50, r.ServiceP50, r.LagP50)
	}
	if _, err := summarizeTransactions(txs, start.Add(time.Hour), start.Add(2*time.Hour)); err == nil {
		t.Error("a window without transactions: no error")
	}
	if _, err := summarizeTransactions(txs, start, start); err == nil {
		t.Error("an empty window: no error")
	}
}
