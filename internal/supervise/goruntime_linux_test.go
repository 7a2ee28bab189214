package supervise

import (
	"os"
	"runtime"
	"testing"
)

func TestGoAtLeast(t *testing.T) {
	for _, c := range []struct {
		version string
		want    bool
	}{
		{"go1.22", true}, {"go1.22.3", true}, {"go1.23rc1", true}, {"go1.30.0", true},
		{"devel go1.24-abcdef Tue Jan 1", true}, {"go2.0", true},
		{"go1.21.13", false}, {"go1.21rc2", false}, {"go1.9", false}, {"", false}, {"gccgo", false},
	} {
		if got := goAtLeast(c.version, 1, minGoMinor); got != c.want {
			t.Errorf("goAtLeast(%q) = %v, want %v", c.version, got, c.want)
		}
	}
}

// The test binary is a Go program of the toolchain that built it.
func TestTagsEventsOfSelf(t *testing.T) {
	var g goRuntimes
	want := goAtLeast(runtime.Version(), 1, minGoMinor)
	for range 2 { // the second from the cache
		if got := g.tagsEvents(os.Getpid()); got != want {
			t.Fatalf("tagsEvents(self) = %v, want %v (%s)", got, want, runtime.Version())
		}
	}
	if g.tagsEvents(1 << 30) {
		t.Error("a thread that does not exist runs Go")
	}
}
