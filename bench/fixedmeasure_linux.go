package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// measureFixed takes one sample of a fixed-load application at rate
// operations per second (0: a closed loop): its server and client each in
// a cgroup of their own, CPU counters read when the client marks the
// start and the end of its measured part.
func measureFixed(ctx context.Context, s *sample, app fixedApp, rate float64) (result loadResult, cpu cpuPerOp, err error) {
	cgs, err := s.fixed.cgroups.sample()
	if err != nil {
		return result, cpu, err
	}
	argv, ready, err := app.server(s)
	if err != nil {
		return result, cpu, errors.Join(err, cgs.remove())
	}
	err = s.withServerIn(ctx, argv, cgs.server, ready, func(srv *server) error {
		window := &cpuWindow{probe: s.fixed.newProbe(), serverPID: srv.cmd.Process.Pid, marks: app.marks}
		hooks := clientHooks{cgroup: cgs.client, extra: app.Warmup + app.Drain, onLine: window.onLine}
		out, err := s.runClientWith(ctx, hooks, app.client(app, s, rate)...)
		if err != nil {
			return err
		}
		if err := window.close(); err != nil {
			return err
		}
		if result, err = app.result(s, out, window.from, window.until); err != nil {
			return err
		}
		cpu, err = perOp(window.before, window.after, result.Completed)
		return err
	})
	// The server's processes are gone once withServerIn returns.
	return result, cpu, errors.Join(err, cgs.remove())
}

// cpuWindow reads the CPU counters when the client marks the start and
// the end of its measured part (or, without an end mark, when it exits).
type cpuWindow struct {
	probe     *cpuProbe
	serverPID int
	marks     clientMarks

	mu             sync.Mutex
	clientPID      int
	started, ended bool
	from, until    time.Time
	before, after  cpuCounters
	err            error
}

func (w *cpuWindow) onLine(stream, line string, pid int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	switch {
	case !w.started && w.marks.start(stream, line):
		w.started, w.clientPID = true, pid
		if w.err = w.probe.locate(w.serverPID, pid); w.err == nil {
			w.before, w.err = w.probe.read()
			w.from = time.Now()
		}
	case w.started && !w.ended && w.marks.end(stream, line):
		w.ended = true
		w.err = w.end()
	}
}

// end reads the counters at the end of the measured part, and checks that
// the processes measured did not change cgroups meanwhile.
func (w *cpuWindow) end() error {
	var err error
	if w.after, err = w.probe.read(); err != nil {
		return err
	}
	w.until = time.Now()
	return errors.Join(w.probe.stayed("server", w.serverPID, w.probe.server),
		w.probe.stayed("client", w.clientPID, w.probe.client))
}

// close ends the window once the client has exited.
func (w *cpuWindow) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.err != nil:
		return fmt.Errorf("reading CPU counters: %w", w.err)
	case !w.started:
		return errors.New("the client exited without marking the start of its measured part")
	case !w.ended:
		w.ended = true
		return w.end()
	}
	return nil
}

// pgbenchResult reads pgbench's per-transaction logs.
func pgbenchResult(s *sample, _ []byte, from, until time.Time) (loadResult, error) {
	paths, err := filepath.Glob(filepath.Join(s.dir, pgbenchLogPrefix+".*"))
	if err != nil || len(paths) == 0 {
		return loadResult{}, fmt.Errorf("pgbench wrote no transaction log in %s", s.dir)
	}
	var txs []pgbenchTransaction
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return loadResult{}, err
		}
		some, err := parsePgbenchLog(data)
		if err != nil {
			return loadResult{}, fmt.Errorf("%s: %w", strings.TrimPrefix(path, s.dir+"/"), err)
		}
		txs = append(txs, some...)
	}
	return summarizeTransactions(txs, from, until)
}
