package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	prebuilt "github.com/slimnet/slim/embed"
	"github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/internal/testenv"
)

// The C unit tests of slim-loadgen: histogram, schedule, parsers.
func TestLoadgenUnits(t *testing.T) {
	testenv.Tools(t, "gcc")
	bin := filepath.Join(t.TempDir(), "loadgen_test")
	sources := []string{"loadgen/hist.c", "loadgen/proto.c", "loadgen/sched.c", "loadgen/loadgen_test.c"}
	args := append([]string{"-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", bin}, sources...)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("building the C unit tests: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin).CombinedOutput(); err != nil {
		t.Errorf("C unit tests: %v\n%s", err, out)
	}
}

// loadgenEnv runs the embedded slim-loadgen against fake servers on the
// loopback of a scratch network namespace.
type loadgenEnv struct {
	t       *testing.T
	bin     string
	scratch *netns.Scratch
}

func newLoadgenEnv(t *testing.T) *loadgenEnv {
	t.Helper()
	testenv.Integration(t)
	bin := filepath.Join(t.TempDir(), "slim-loadgen")
	if err := os.WriteFile(bin, prebuilt.Loadgen(), 0o755); err != nil {
		t.Fatal(err)
	}
	scratch, err := netns.NewScratch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scratch.Close() })
	err = scratch.Do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		t.Fatalf("bringing up lo in the scratch namespace: %v", err)
	}
	return &loadgenEnv{t: t, bin: bin, scratch: scratch}
}

// fakeServer answers requests on 127.0.0.1 of the scratch namespace: each
// connection's bytes go to respond, which returns how many it consumed and
// the answer (consumed 0: more bytes needed). before, if set, runs before
// each answer with the count of requests answered so far.
type fakeServer struct {
	respond func(buf []byte) (consumed int, answer []byte, err error)
	before  func(answered int64)
	// split writes each answer in two parts, a moment apart.
	split    bool
	answered atomic.Int64
}

func (env *loadgenEnv) serve(srv *fakeServer) (port int) {
	var l net.Listener
	err := env.scratch.Do(func() error {
		var err error
		l, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	})
	if err != nil {
		env.t.Fatal(err)
	}
	var conns sync.WaitGroup
	env.t.Cleanup(func() {
		l.Close()
		conns.Wait()
	})
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer conn.Close()
				srv.handle(conn)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func (srv *fakeServer) handle(conn net.Conn) {
	var pending []byte
	buf := make([]byte, 64*1024)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		pending = append(pending, buf[:n]...)
		for len(pending) > 0 {
			consumed, answer, err := srv.respond(pending)
			if err != nil {
				conn.Write([]byte(err.Error()))
				return
			}
			if consumed == 0 {
				break
			}
			pending = pending[consumed:]
			if srv.before != nil {
				srv.before(srv.answered.Load())
			}
			if answer == nil { // close the connection
				return
			}
			if srv.split && len(answer) > 1 {
				conn.Write(answer[:len(answer)/2])
				time.Sleep(100 * time.Microsecond)
				answer = answer[len(answer)/2:]
			}
			if _, err := conn.Write(answer); err != nil {
				return
			}
			srv.answered.Add(1)
		}
	}
}

// memcachedAnswers is a memcached text-protocol server over a map.
func memcachedAnswers() func([]byte) (int, []byte, error) {
	var mu sync.Mutex
	store := map[string][]byte{}
	return func(buf []byte) (int, []byte, error) {
		line, _, ok := bytes.Cut(buf, []byte("\r\n"))
		if !ok {
			return 0, nil, nil
		}
		fields := strings.Fields(string(line))
		mu.Lock()
		defer mu.Unlock()
		switch {
		case len(fields) == 2 && fields[0] == "get":
			value, ok := store[fields[1]]
			if !ok {
				return len(line) + 2, []byte("END\r\n"), nil
			}
			return len(line) + 2, fmt.Appendf(nil, "VALUE %s 0 %d\r\n%s\r\nEND\r\n", fields[1], len(value), value), nil
		case len(fields) == 5 && fields[0] == "set":
			size, err := strconv.Atoi(fields[4])
			if err != nil {
				return 0, nil, err
			}
			total := len(line) + 2 + size + 2
			if len(buf) < total {
				return 0, nil, nil
			}
			store[fields[1]] = bytes.Clone(buf[len(line)+2 : len(line)+2+size])
			return total, []byte("STORED\r\n"), nil
		}
		return 0, nil, fmt.Errorf("ERROR\r\n")
	}
}

// loadgenRun is what a run of slim-loadgen printed.
type loadgenRun struct {
	stdout, stderr string
	err            error
	report         struct {
		Scheduled, Completed, Unanswered, Sets, Misses int64
		Achieved                                       float64
		Latency                                        struct{ P50, P90, P99, P999, Max float64 } `json:"latency_us"`
		Service                                        struct{ P50, P99 float64 }                 `json:"service_us"`
	}
}

func (env *loadgenEnv) run(args ...string) loadgenRun {
	env.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var run loadgenRun
	if err := env.scratch.Do(cmd.Start); err != nil {
		env.t.Fatal(err)
	}
	run.err = cmd.Wait()
	if ctx.Err() != nil {
		env.t.Fatalf("slim-loadgen %v did not finish within a minute", args)
	}
	run.stdout, run.stderr = stdout.String(), stderr.String()
	if run.err == nil {
		lines := nonEmptyLines(stdout.Bytes())
		want := []string{markerPrefix + "start", markerPrefix + "end"}
		if len(lines) != 3 || lines[0] != want[0] || lines[1] != want[1] {
			env.t.Fatalf("slim-loadgen printed %q, want the two marks and a JSON line", lines)
		}
		if err := json.Unmarshal([]byte(lines[2]), &run.report); err != nil {
			env.t.Fatalf("%v in %s", err, lines[2])
		}
	}
	return run
}

func (run loadgenRun) checkOrdered(t *testing.T) {
	t.Helper()
	l := run.report.Latency
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("percentiles out of order: %+v", l)
	}
}

// At a fixed rate, exactly rate × duration requests are due in the
// measured part, every one is answered, and none is faster than the
// server's own delay.
func TestLoadgenHoldsTheRate(t *testing.T) {
	env := newLoadgenEnv(t)
	const delay = 2 * time.Millisecond
	port := env.serve(&fakeServer{respond: memcachedAnswers(), before: func(int64) { time.Sleep(delay) }})
	run := env.run("--proto", "memcached", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--rate", "2000", "--warmup", "0.2", "--duration", "1", "--drain", "10", "--keys", "100")
	if run.err != nil {
		t.Fatalf("slim-loadgen: %v\n%s", run.err, run.stderr)
	}
	r := run.report
	if r.Scheduled != 2000 || r.Completed != 2000 || r.Unanswered != 0 {
		t.Errorf("scheduled %d, completed %d, unanswered %d: want 2000 due in 1 s at 2000/s, all answered", r.Scheduled, r.Completed, r.Unanswered)
	}
	if r.Sets < 100 || r.Sets > 300 || r.Misses != 0 {
		t.Errorf("%d sets and %d misses in 2000 requests: want about 10%% sets and every get a hit (keys prefilled)", r.Sets, r.Misses)
	}
	if min := float64(delay.Microseconds()); r.Latency.P50 < min || r.Service.P50 < min {
		t.Errorf("p50 %v us (from send %v us), below the server's delay of %v", r.Latency.P50, r.Service.P50, delay)
	}
	run.checkOrdered(t)
}

// A stall of the server shows in the latencies of every request that fell
// due during it, not only of the few that were sent: latency is counted
// from when a request was due (no coordinated omission).
func TestLoadgenCountsLatencyFromWhenDue(t *testing.T) {
	env := newLoadgenEnv(t)
	const stall = 300 * time.Millisecond
	var once sync.Once
	var stallUntil atomic.Int64
	// Every connection holds its answers from the 510th on (10 prefill
	// sets, then half a second at 1000/s) until the stall is over.
	port := env.serve(&fakeServer{respond: memcachedAnswers(), before: func(answered int64) {
		if answered >= 10+500 {
			once.Do(func() { stallUntil.Store(time.Now().Add(stall).UnixNano()) })
		}
		time.Sleep(time.Until(time.Unix(0, stallUntil.Load())))
	}})
	run := env.run("--proto", "memcached", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--rate", "1000", "--warmup", "0", "--duration", "2", "--drain", "10", "--keys", "10")
	if run.err != nil {
		t.Fatalf("slim-loadgen: %v\n%s", run.err, run.stderr)
	}
	r := run.report
	if r.Completed != 2000 {
		t.Errorf("completed %d of 2000", r.Completed)
	}
	// About 300 of 2000 requests were due during the stall, waiting from
	// 0 to 300 ms: the 90th percentile is near 100 ms. Measured from
	// sending, only the 16 in flight would have waited.
	if r.Latency.P90 < 50e3 {
		t.Errorf("p90 %v us after a %v stall: the requests due during it were not counted from when due", r.Latency.P90, stall)
	}
	if r.Latency.Max < 250e3 {
		t.Errorf("max %v us, want at least the stall (%v) less a little", r.Latency.Max, stall)
	}
	run.checkOrdered(t)
}

// Redis and HTTP, with answers arriving in pieces, in a closed loop.
func TestLoadgenProtocols(t *testing.T) {
	env := newLoadgenEnv(t)
	redis := env.serve(&fakeServer{split: true, respond: func(buf []byte) (int, []byte, error) {
		// *2 GET key or *3 SET key value, each part "$n\r\ndata\r\n".
		parts, used, ok := parseRESPArray(buf)
		switch {
		case !ok:
			return 0, nil, nil
		case len(parts) == 2 && parts[0] == "GET":
			return used, []byte("$3\r\nabc\r\n"), nil
		case len(parts) == 3 && parts[0] == "SET":
			return used, []byte("+OK\r\n"), nil
		}
		return 0, nil, errors.New("-ERR unknown\r\n")
	}})
	page := strings.Repeat("p", 1024)
	web := env.serve(&fakeServer{split: true, respond: func(buf []byte) (int, []byte, error) {
		end := bytes.Index(buf, []byte("\r\n\r\n"))
		if end < 0 {
			return 0, nil, nil
		}
		if !bytes.HasPrefix(buf, []byte("GET /1k.html HTTP/1.1\r\nHost: 127.0.0.1\r\n")) {
			return 0, nil, fmt.Errorf("HTTP/1.1 400 Bad Request\r\n\r\n")
		}
		return end + 4, fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(page), page), nil
	}})
	for _, c := range []struct {
		name string
		args []string
	}{
		{"redis", []string{"--proto", "redis", "--port", strconv.Itoa(redis)}},
		{"http", []string{"--proto", "http", "--port", strconv.Itoa(web), "--path", "/1k.html"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := env.run(append(c.args, "--host", "127.0.0.1", "--conns", "4", "--warmup", "0.1", "--duration", "0.5", "--keys", "20")...)
			if run.err != nil {
				t.Fatalf("slim-loadgen: %v\n%s", run.err, run.stderr)
			}
			if run.report.Completed <= 0 || run.report.Achieved <= 0 || run.report.Unanswered != 0 {
				t.Errorf("closed loop: %+v", run.report)
			}
			run.checkOrdered(t)
		})
	}
}

func parseRESPArray(buf []byte) (parts []string, used int, ok bool) {
	r := bufio.NewReader(bytes.NewReader(buf))
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "*") {
		return nil, 0, false
	}
	used = len(line)
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	for i := 0; i < n; i++ {
		header, err := r.ReadString('\n')
		if err != nil {
			return nil, 0, false
		}
		size, _ := strconv.Atoi(strings.TrimSpace(header[1:]))
		data := make([]byte, size+2)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, 0, false
		}
		parts = append(parts, string(data[:size]))
		used += len(header) + size + 2
	}
	return parts, used, true
}

// Errors end the run at once with a message that says what happened.
func TestLoadgenFailsLoudly(t *testing.T) {
	env := newLoadgenEnv(t)
	refusing := env.serve(&fakeServer{respond: func(buf []byte) (int, []byte, error) {
		if i := bytes.Index(buf, []byte("\r\n")); i >= 0 {
			return len(buf), []byte("SERVER_ERROR out of memory\r\n"), nil
		}
		return 0, nil, nil
	}})
	var answers atomic.Int64
	memcached := memcachedAnswers()
	closing := env.serve(&fakeServer{respond: func(buf []byte) (int, []byte, error) {
		n, answer, err := memcached(buf)
		if n > 0 && answers.Add(1) > 50 {
			return n, nil, nil // close the connection
		}
		return n, answer, err
	}})
	var closed net.Listener
	if err := env.scratch.Do(func() (err error) { closed, err = net.Listen("tcp4", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	closed.Close()
	for _, c := range []struct {
		name, port, want string
		status           int
	}{
		{"server error", strconv.Itoa(refusing), "SERVER_ERROR out of memory", 1},
		{"server closes", strconv.Itoa(closing), "closed", 1},
		{"nothing listens", strconv.Itoa(closed.Addr().(*net.TCPAddr).Port), "Connection refused", 1},
		{"bad port", "0", "--port 0: want a number from 1 to 65535", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := env.run("--proto", "memcached", "--host", "127.0.0.1", "--port", c.port, "--rate", "1000",
				"--warmup", "0", "--duration", "1", "--keys", "10")
			var exit *exec.ExitError
			if !errors.As(run.err, &exit) || exit.ExitCode() != c.status || !strings.Contains(run.stderr, c.want) {
				t.Errorf("exit %v, stderr %q: want status %d and %q", run.err, run.stderr, c.status, c.want)
			}
		})
	}
}
