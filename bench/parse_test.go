package bench

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func near(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }

func TestParseIperf3(t *testing.T) {
	got, err := parseIperf3(readSample(t, "iperf3-host.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !near(got.BitsPerSecond, 12311399747.573833) || !near(got.BytesReceived, 3078750208) {
		t.Errorf("got %+v, want 12311399747.573833 bit/s and 3078750208 bytes", got)
	}
}

func TestParseIperf3Errors(t *testing.T) {
	for _, tc := range []struct {
		name, input, want string
	}{
		{"refused", string(readSample(t, "iperf3-refused.json")), "iperf3: unable to connect to server: Connection refused"},
		{"not JSON", "iperf3: error - unable to connect", "reading iperf3 JSON report"},
		{"no summary", `{"end": {}}`, "no end.sum_received"},
		{"nothing received", `{"end": {"sum_received": {"bytes": 0, "bits_per_second": 0}}}`, "received nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseIperf3([]byte(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseNetperfValues(t *testing.T) {
	for _, tc := range []struct {
		file                string
		throughput, latency float64
	}{
		{"netperf-tcp-rr.txt", 24200.12, 41.25},
		{"netperf-tcp-crr.txt", 10259.16, 97.27},
	} {
		got, err := parseNetperfValues(readSample(t, tc.file), 2)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if !near(got[0], tc.throughput) || !near(got[1], tc.latency) {
			t.Errorf("%s: got %v, want [%v %v]", tc.file, got, tc.throughput, tc.latency)
		}
	}
}

func TestParseNetperfValuesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, input, want string
	}{
		{"refused", string(readSample(t, "netperf-refused.txt")), "want 2 comma-separated values"},
		{"empty", "\n\n", "printed nothing"},
		{"not a number", "24200.12,n/a\n", "value 2 is not a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseNetperfValues([]byte(tc.input), 2)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseWrk(t *testing.T) {
	got, err := parseWrk(readSample(t, "wrk.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !near(got, 50062.84) {
		t.Errorf("got %v req/s, want 50062.84", got)
	}
}

func TestParseWrkErrors(t *testing.T) {
	for _, tc := range []struct {
		file, want string
	}{
		{"wrk-non2xx.txt", "wrk got 84702 error responses"},
		{"wrk-refused.txt", "no Requests/sec line: unable to connect to 198.18.0.1:8999 Connection refused"},
	} {
		_, err := parseWrk(readSample(t, tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.file, err, tc.want)
		}
	}
}

func TestParseMemcaslap(t *testing.T) {
	got, err := parseMemcaslap(readSample(t, "memcaslap.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got != 75149 {
		t.Errorf("got %v ops/s, want 75149", got)
	}
}

func TestParseMemcaslapErrors(t *testing.T) {
	for _, tc := range []struct {
		name, input, want string
	}{
		{"refused", string(readSample(t, "memcaslap-refused.txt")), "no result line"},
		{"no TPS", "Run time: 2.0s Ops: 0\n", "no TPS"},
		{"zero", "Run time: 2.0s Ops: 0 TPS: 0 Net_rate: 0.0M/s\n", "no operations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseMemcaslap([]byte(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseCPUBusy(t *testing.T) {
	got, err := parseCPUBusy(readSample(t, "proc-stat.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// user 9068 + nice 0 + system 2802 + irq 0 + softirq 398 + steal 3467.
	if want := uint64(9068 + 2802 + 398 + 3467); got != want {
		t.Errorf("got %d ticks, want %d", got, want)
	}
	if _, err := parseCPUBusy([]byte("cpu0 1 2 3\n")); err == nil {
		t.Error("no error for /proc/stat without a cpu line")
	}
	if _, err := parseCPUBusy([]byte("cpu 1 2 3\n")); err == nil {
		t.Error("no error for a short cpu line")
	}
}

func TestTail(t *testing.T) {
	if got := tail([]byte("  a\n  b  \n")); got != "a b" {
		t.Errorf("tail joined lines as %q, want %q", got, "a b")
	}
	if got := tail(nil); got != "(no output)" {
		t.Errorf("tail of nothing is %q", got)
	}
	long := strings.Repeat("é", 400)
	if got := tail([]byte(long)); !strings.HasPrefix(got, "…é") || len(got) > 310 {
		t.Errorf("tail of a long output is %d bytes: %q", len(got), got)
	}
}

func TestParsePgbenchTPS(t *testing.T) {
	out := `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 1
query mode: simple
number of clients: 8
number of threads: 1
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 2950
number of failed transactions: 0 (0.000%)
latency average = 5.411 ms
average connection time = 2.652 ms
tps = 1478.396523 (including reconnection times)
`
	rate, err := parsePgbenchTPS([]byte(out))
	if err != nil || rate != 1478.396523 {
		t.Errorf("parsePgbenchTPS = %v, %v; want 1478.396523", rate, err)
	}
	for _, bad := range []string{"", "tps = many (including reconnection times)\n", "tps = 0.000000 (including reconnection times)\n"} {
		if rate, err := parsePgbenchTPS([]byte(bad)); err == nil {
			t.Errorf("parsePgbenchTPS(%q) = %v, want an error", bad, rate)
		}
	}
}
