package supervise

import (
	"debug/buildinfo"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// goRuntimes says which programs run a Go runtime whose netpoller
// discards stale epoll events: from Go 1.22 each registration's data
// carries the descriptor's sequence tag (fdseq), and an event whose tag is
// not the descriptor's current one is dropped. Only such a program may be
// given a host listener's registration under its listener's number
// (mirror_linux.go): once the program closes its listener, that
// registration outlives it until the supervisor withdraws the host
// listener, and an event from it must do nothing. Results are kept by the
// executable's device and inode (the build information of a big binary
// takes milliseconds to read).
type goRuntimes struct {
	mu   sync.Mutex
	byID map[[2]uint64]bool
}

// minGoMinor is the first Go 1.x whose netpoller checks fdseq tags.
const minGoMinor = 22

// tagsEvents reports whether thread tid runs a Go ≥ 1.22 executable.
func (g *goRuntimes) tagsEvents(tid int) bool {
	exe := fmt.Sprintf("/proc/%d/exe", tid)
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		return false
	}
	id := [2]uint64{st.Dev, st.Ino}
	g.mu.Lock()
	ok, known := g.byID[id]
	g.mu.Unlock()
	if known {
		return ok
	}
	ok = false
	if info, err := buildinfo.ReadFile(exe); err == nil {
		ok = goAtLeast(info.GoVersion, 1, minGoMinor)
	}
	g.mu.Lock()
	if g.byID == nil || len(g.byID) > 256 {
		g.byID = map[[2]uint64]bool{}
	}
	g.byID[id] = ok
	g.mu.Unlock()
	return ok
}

// goAtLeast compares a runtime version ("go1.22.3", "go1.23rc1",
// "devel go1.24-abc …") with major.minor.
func goAtLeast(version string, major, minor int) bool {
	v := version
	if i := strings.Index(v, "go"); i >= 0 {
		v = v[i+2:]
	} else {
		return false
	}
	end := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end >= 0 {
		v = v[:end]
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || maj == major && min >= minor
}
