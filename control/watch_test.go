package control

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// stepSource serves the snapshots of snapshotSteps in turn, then the last
// one again and again.
type stepSource struct {
	steps []Snapshot
	calls atomic.Int64
}

func newStepSource() *stepSource {
	src := &stepSource{}
	raw := baseSnapshot()
	for i, step := range snapshotSteps {
		raw.Time = t0.Add(time.Duration(i) * time.Second)
		step.change(&raw)
		src.steps = append(src.steps, raw)
	}
	return src
}

func (s *stepSource) Snapshot() Snapshot {
	i := min(int(s.calls.Add(1))-1, len(s.steps)-1)
	return s.steps[i]
}

// want is step i as a snapshot reply carries it.
func (s *stepSource) want(t *testing.T, i int) Snapshot {
	snap := s.steps[i]
	snap.normalize()
	return roundTrip(t, snap)
}

// TestControlWatchChanges: in delta mode the first reply is a snapshot and
// the others changes, and the client turns them back into the snapshots
// a full watch would have sent.
func TestControlWatchChanges(t *testing.T) {
	src := newStepSource()
	path, _ := startServer(t, src)
	s := dialRaw(t, path)
	first := s.ask(`{"version":1,"op":"watch","interval_ms":100,"changes":true}`)
	if first.Snapshot == nil || first.Changes != nil {
		t.Fatalf("first reply of a delta watch: %+v, want a snapshot", first)
	}
	s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if !s.lines.Scan() || !strings.Contains(s.lines.Text(), `"changes":{`) || strings.Contains(s.lines.Text(), `"snapshot"`) {
		t.Fatalf("second reply of a delta watch: %.300s…, want changes only", s.lines.Text())
	}

	src = newStepSource()
	path, _ = startServer(t, src)
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WatchChanges(MinInterval); err != nil {
		t.Fatal(err)
	}
	for i := range src.steps {
		snap, err := c.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := src.want(t, i); !reflect.DeepEqual(snap, want) {
			t.Fatalf("step %d (%s): the client's snapshot differs from the router's", i, snapshotSteps[i].name)
		}
	}
}

// TestControlWatchChangesFromOldRouter: a router that predates delta mode
// ignores "changes" and sends snapshots; the client takes them as they are.
func TestControlWatchChangesFromOldRouter(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	src := newStepSource()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		bufio.NewReader(conn).ReadString('\n')
		for i := range 3 {
			snap := src.steps[i]
			line, _ := json.Marshal(map[string]any{"version": 1, "ok": true, "snapshot": snap})
			conn.Write(append(line, '\n'))
		}
	}()
	w := &Watcher{Path: path, Interval: MinInterval, Retry: 50 * time.Millisecond}
	defer w.Close()
	for i := range 3 {
		snap, err := w.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := roundTrip(t, src.steps[i]); !reflect.DeepEqual(snap, want) {
			t.Errorf("snapshot %d from an old router differs", i)
		}
	}
}

// TestControlChangesBeforeSnapshot: changes without a snapshot to apply
// them to are an error, not a made-up snapshot.
func TestControlChangesBeforeSnapshot(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		b.Write([]byte(`{"version":1,"ok":true,"changes":{"time":"2026-03-01T12:00:00Z"}}` + "\n"))
		b.Close()
	}()
	lines := bufio.NewScanner(a)
	c := &Client{conn: a, lines: lines}
	if _, err := c.Next(context.Background()); err == nil || !strings.Contains(err.Error(), "before a snapshot") {
		t.Errorf("changes first: %v", err)
	}
}
