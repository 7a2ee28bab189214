package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directorySequenceOffset is where the directory table keeps its sequence
// lock (docs/protocol.md §2): odd while the router rewrites the table.
const directorySequenceOffset = 8

// TestIntegrationDirectoryWriterPreempted: a client whose connect finds
// the directory table mid-update (the router's thread preempted while it
// rewrites the table, as on a busy two-CPU host) waits for the update and
// is accelerated; a writer that never finishes (a router killed
// mid-update) costs one bounded wait, after which connects go over the
// overlay at once and none fails. Once, the reader gave up after about a
// millisecond of spinning and treated the table as empty: in make test,
// one relisten cycle in secure mode now and then went over the overlay.
func TestIntegrationDirectoryWriterPreempted(t *testing.T) {
	l := newLab(t, "dwp")
	addr := l.containerAddr("h1-c1")
	server := l.start("h1-c1", true, binPath("churn"), "server", addr, "7850")
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h2", addr, 7850, 10*time.Second)
	seq := mapDirectorySequence(t, filepath.Join(l.RouterDir("h2"), "directory"))

	t.Run("preempted", func(t *testing.T) {
		l.t = t
		release := seq.hold(t)
		probe := l.start("h2-c1", true, "env", "SLIM_DEBUG=1", binPath("probe"), addr, "7850", "1", "0")
		// The shim maps the table at its first lookup, then finds it
		// mid-update: let the update end 10 ms later (a preempted
		// thread's time slice), well within the reader's patience.
		waitForOutput(t, probe, "slim: directory ", 10*time.Second)
		time.Sleep(10 * time.Millisecond)
		release()
		conns := probeResult(t, probe)
		if len(conns) != 1 || conns[0].path != "host" {
			t.Errorf("a connect that found the table mid-update was not accelerated: %+v\n%s", conns, probe.output())
		}
	})
	t.Run("writer-died", func(t *testing.T) {
		l.t = t
		release := seq.hold(t)
		defer release()
		probe := l.start("h2-c1", true, "env", "SLIM_DEBUG=1", binPath("probe"), addr, "7850", "3", "20")
		conns := probeResult(t, probe)
		if len(conns) != 3 {
			t.Fatalf("%d of 3 connections succeeded:\n%s", len(conns), probe.output())
		}
		for _, c := range conns {
			if c.path != "overlay" {
				t.Errorf("connection %d took the %s path with the table stuck mid-update", c.idx, c.path)
			}
		}
		if n := strings.Count(probe.output(), "writer is stuck"); n != 1 {
			t.Errorf("the shim waited for the stuck writer %d times, want once:\n%s", n, probe.output())
		}
		release()
		after := l.start("h2-c1", true, binPath("probe"), addr, "7850", "1", "0")
		if paths := probeOutcome(t, after, 30*time.Second); paths["host"] != 1 {
			t.Errorf("once the table was stable again the connection was not accelerated: %v", paths)
		}
	})
}

// directorySequence is the sequence lock of a router's directory table,
// mapped by the test to play a writer.
type directorySequence struct{ word *uint32 }

func mapDirectorySequence(t *testing.T, path string) directorySequence {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := unix.Mmap(int(f.Fd()), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	return directorySequence{word: (*uint32)(unsafe.Pointer(&mem[directorySequenceOffset]))}
}

// hold makes the sequence odd, as a writer does while it rewrites the
// table, and returns what ends that (once; idempotent). The router itself
// may publish meanwhile: release then leaves its value alone.
func (s directorySequence) hold(t *testing.T) (release func()) {
	t.Helper()
	even := atomic.LoadUint32(s.word)
	if even%2 == 1 || !atomic.CompareAndSwapUint32(s.word, even, even+1) {
		t.Fatalf("the router is writing its directory table (sequence %d)", even)
	}
	return func() { atomic.CompareAndSwapUint32(s.word, even+1, even+2) }
}

// waitForOutput is program.waitFor polling every millisecond, for a test
// that must act within a few milliseconds of the line.
func waitForOutput(t *testing.T, p *program, text string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !strings.Contains(p.output(), text); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %v:\n%s", p.name, text, timeout, p.output())
		}
	}
}

// probeResult waits for testdata/c/probe.c and returns its connections,
// failing the test on any FAIL line.
func probeResult(t *testing.T, probe *program) []probeConn {
	t.Helper()
	err := probe.wait(60 * time.Second)
	out := probe.output()
	if err != nil || strings.Contains(out, "FAIL") {
		t.Errorf("%s (%v):\n%s", probe.name, err, out)
	}
	return probeConns(out)
}
