package control

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The control API attacked by the clients it lets in (docs/secure.md,
// "Tested: local denial of service and shim reports").

// TestClientTimesOutOnSilentRouter: a router that does not accept (its
// accept loop stalled, its backlog holding the connection) or accepts and
// never answers makes slim status, slim policy and slim top's watcher
// fail with a clear error within ReplyTimeout, even with a context that
// never ends, instead of hanging.
func TestClientTimesOutOnSilentRouter(t *testing.T) {
	for _, accepts := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), SocketName)
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		if accepts {
			go func() {
				for {
					conn, err := l.Accept()
					if err != nil {
						return
					}
					t.Cleanup(func() { conn.Close() })
				}
			}()
		}
		started := time.Now()
		_, err = Fetch(context.Background(), path)
		if err == nil || !strings.Contains(err.Error(), "no reply within") || !strings.Contains(err.Error(), path) {
			t.Errorf("accepting %v: snapshot from a silent router: %v; want a no-reply error naming the socket", accepts, err)
		}
		if took := time.Since(started); took > ReplyTimeout+10*time.Second {
			t.Errorf("accepting %v: the error took %v", accepts, took)
		}
	}
}

// TestWatcherTimesOutWhenUpdatesStop: a watch whose router stops sending
// (stalled after the first snapshot) ends in an error after the interval
// and ReplyTimeout, so slim top says so and reconnects.
func TestWatcherTimesOutWhenUpdatesStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		line, _ := json.Marshal(Reply{Version: Version, OK: true, Snapshot: &Snapshot{}})
		conn.Write(append(line, '\n'))
		time.Sleep(time.Minute) // and then nothing
	}()
	w := &Watcher{Path: path, Interval: MinInterval, Retry: 50 * time.Millisecond}
	defer w.Close()
	if _, err := w.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	done := make(chan error, 1)
	go func() { _, err := w.Next(context.Background()); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "no reply within") {
			t.Errorf("a watch that went silent: %v", err)
		}
		t.Logf("silent watch ended after %v: %v", time.Since(started).Round(time.Millisecond), err)
	case <-time.After(MinInterval + ReplyTimeout + 20*time.Second):
		t.Fatal("a watch that went silent still waits")
	}
}

// TestIdleSessionsDoNotLockOut: a client that fills its share of
// sessions with idle connections holds them for IdleTimeout, not for
// minutes: a snapshot is served soon after.
func TestIdleSessionsDoNotLockOut(t *testing.T) {
	path, _ := startServer(t, &fakeSource{})
	var idle []net.Conn
	t.Cleanup(func() {
		for _, c := range idle {
			c.Close()
		}
	})
	for range MaxRootClients + MaxClients {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, conn)
	}
	started := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := Fetch(ctx, path)
		cancel()
		if err == nil {
			break
		}
		if time.Since(started) > IdleTimeout+20*time.Second {
			t.Fatalf("still refused %v after opening %d idle sessions: %v", time.Since(started), len(idle), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("served %v after the idle sessions were opened", time.Since(started).Round(time.Millisecond))
}
