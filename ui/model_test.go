package ui

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/slimnet/slim/control"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii)
	time.Local = time.UTC
	os.Exit(m.Run())
}

var snapTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a router on h1 with two containers and n connections.
func fixture(n int) control.Snapshot {
	s := control.Snapshot{
		Time: snapTime,
		Router: control.RouterHealth{
			Version: "v0.3.0", Host: netip.MustParseAddr("198.18.0.1"), Subnet: netip.MustParsePrefix("198.19.1.0/24"),
			Started: snapTime.Add(-2*time.Hour - 3*time.Minute), Uptime: 2*time.Hour + 3*time.Minute, LastSweep: snapTime,
		},
		Peers: []control.Peer{{Host: netip.MustParseAddr("198.18.0.2"), Subnet: netip.MustParsePrefix("198.19.2.0/24"), Connected: true, LastDirectory: snapTime.Add(-time.Second), Listeners: 1}},
		Containers: []control.Container{
			{Name: "h1-c1", Addr: netip.MustParseAddr("198.19.1.2"), Listeners: 1},
			{Name: "h1-c2", Addr: netip.MustParseAddr("198.19.1.3")},
		},
		Listeners: []control.Listener{{Container: "h1-c1", Overlay: netip.MustParseAddrPort("198.19.1.2:5201"), Host: netip.MustParseAddrPort("198.18.0.1:41000"), Since: snapTime.Add(-time.Hour)}},
		Policy:    []control.PolicyRule{},
	}
	for i := range n {
		c := control.Connection{
			Cookie: uint64(1000 + i), Since: snapTime.Add(-time.Duration(i*37) * time.Second),
			BytesIn: uint64(i) * 123457, BytesOut: uint64(n-i) * 9876543, RTT: time.Duration(80+i*13) * time.Microsecond,
			RateIn: float64(i%5) * 1e5, RateOut: float64((i*7)%11) * 3e6, PeerHost: netip.MustParseAddrPort("198.18.0.2:41000"),
		}
		switch i % 3 {
		case 0: // h1-c2 → h2-c1
			c.Container, c.Role = "h1-c2", control.RoleClient
			c.Local = netip.AddrPortFrom(netip.MustParseAddr("198.19.1.3"), uint16(40000+i))
			c.Peer = netip.MustParseAddrPort("198.19.2.2:8080")
		case 1: // a client on h2 → h1-c1's listener: the peer is only a host address
			c.Container, c.Role = "h1-c1", control.RoleServer
			c.Local = netip.MustParseAddrPort("198.19.1.2:5201")
			c.PeerHost = netip.AddrPortFrom(netip.MustParseAddr("198.18.0.2"), uint16(50000+i))
		case 2: // h1-c1 → h2's listener
			c.Container, c.Role = "h1-c1", control.RoleClient
			c.Local = netip.AddrPortFrom(netip.MustParseAddr("198.19.1.2"), uint16(30000+i))
			c.Peer = netip.MustParseAddrPort("198.19.2.2:443")
		}
		s.Connections = append(s.Connections, c)
		for j := range s.Containers {
			if s.Containers[j].Name == c.Container {
				s.Containers[j].Connections++
			}
		}
	}
	return s
}

func withShimStats(s control.Snapshot) control.Snapshot {
	buckets := make([]uint64, 24)
	buckets[6], buckets[7], buckets[10] = 900, 95, 5
	s.Shims = control.ShimStats{
		Reports: 12, LastReport: snapTime, SetupsPerSecond: 100,
		Fallbacks:    map[string]uint64{"no_directory_entry": 7, "router_unreachable": 2},
		SetupBuckets: buckets,
	}
	s.Policy = []control.PolicyRule{{Rule: "allow from container h1-c1 to 198.19.2.0/24", Hits: 42}, {Rule: "deny", Hits: 3}}
	return s
}

// drive applies messages to a new model of the given size.
func drive(w, h int, msgs ...tea.Msg) Model {
	var m tea.Model = New(nil, Options{Target: "/run/slim/control.sock", Retry: time.Second})
	m, _ = m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	for _, msg := range msgs {
		m, _ = m.Update(msg)
	}
	return m.(Model)
}

func keys(s ...string) []tea.Msg {
	var msgs []tea.Msg
	for _, k := range s {
		switch k {
		case "down":
			msgs = append(msgs, tea.KeyMsg{Type: tea.KeyDown})
		case "pgdown":
			msgs = append(msgs, tea.KeyMsg{Type: tea.KeyPgDown})
		case "end":
			msgs = append(msgs, tea.KeyMsg{Type: tea.KeyEnd})
		case "enter":
			msgs = append(msgs, tea.KeyMsg{Type: tea.KeyEnter})
		case "esc":
			msgs = append(msgs, tea.KeyMsg{Type: tea.KeyEsc})
		default:
			msgs = append(msgs, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
		}
	}
	return msgs
}

// withStore makes s a router's on etcd, connected or cut off for 40 s
// with two lists of listeners waiting.
func withStore(s control.Snapshot, connected bool) control.Snapshot {
	h := control.StoreHealth{Backend: "etcd", Joined: true, Connected: true, Since: snapTime.Add(-time.Hour), Revision: 42, Members: 4, Listeners: 7}
	if !connected {
		h.Connected, h.Since, h.LastError = false, snapTime.Add(-40*time.Second), "context deadline exceeded"
		h.Unpublished, h.Pending, h.PendingSince = true, 2, snapTime.Add(-30*time.Second)
	}
	s.Router.Store = &h
	return s
}

func snap(s control.Snapshot) tea.Msg { return SnapshotMsg{Snapshot: s} }

var errRefused = errors.New("dial unix /run/slim/control.sock: connect: connection refused")

func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		w, h int
		msgs []tea.Msg
	}{
		{"empty", 80, 24, []tea.Msg{snap(fixture(0))}},
		{"connecting", 80, 24, nil},
		{"unreachable", 80, 24, []tea.Msg{ErrorMsg{Err: errRefused, At: snapTime}}},
		{"unreachable-stale", 80, 24, []tea.Msg{snap(fixture(4)), ErrorMsg{Err: errRefused, At: snapTime}}},
		{"many", 80, 24, []tea.Msg{snap(withShimStats(fixture(40)))}},
		{"many-scrolled", 80, 24, append([]tea.Msg{snap(fixture(40))}, keys("down", "down", "pgdown")...)},
		{"many-end", 80, 24, append([]tea.Msg{snap(fixture(40))}, keys("end")...)},
		{"sorted-by-container-asc", 100, 30, append([]tea.Msg{snap(fixture(12))}, keys("1", "r")...)},
		{"filtered", 100, 30, append([]tea.Msg{snap(fixture(12))}, keys("/", "c", "2", "enter")...)},
		{"filter-no-match", 80, 24, append([]tea.Msg{snap(fixture(12))}, keys("/", "n", "o", "p", "e")...)},
		{"narrow", 50, 20, []tea.Msg{snap(withShimStats(fixture(8)))}},
		{"very-narrow", 30, 12, []tea.Msg{snap(fixture(3))}},
		{"wide", 140, 20, []tea.Msg{snap(withShimStats(fixture(5)))}},
		{"help", 80, 24, append([]tea.Msg{snap(fixture(3))}, keys("?")...)},
		{"resized", 80, 24, []tea.Msg{snap(fixture(30)), tea.WindowSizeMsg{Width: 100, Height: 16}}},
		{"store-unreachable", 100, 16, []tea.Msg{snap(withStore(fixture(3), false))}},
		{"store-connected", 100, 16, []tea.Msg{snap(withStore(fixture(3), true))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := drive(c.w, c.h, c.msgs...)
			view := m.View()
			checkSize(t, view, m.width, m.height)
			golden(t, c.name, view)
		})
	}
}

func TestRenderOnceGolden(t *testing.T) {
	out := RenderOnce(withShimStats(fixture(6)), 100)
	if strings.Count(out, "198.19.1.3:") != 2 {
		t.Errorf("--once output lacks the connections:\n%s", out)
	}
	golden(t, "once", out)
}

// checkSize: the screen is exactly h lines, none wider than w.
func checkSize(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("view has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			t.Errorf("line %d is %d cells wide (terminal %d): %q", i+1, ansi.StringWidth(l), w, l)
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ui -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from %s (go test ./ui -update rewrites it):\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

func TestKeys(t *testing.T) {
	m := drive(80, 24, snap(fixture(40)))
	if m.sortBy != colRate || !m.desc {
		t.Fatalf("default sort %v desc %v, want rate descending", m.sortBy, m.desc)
	}
	m = drive(80, 24, append([]tea.Msg{snap(fixture(40))}, keys("s", "s", "r")...)...)
	if m.sortBy != colContainer || m.desc {
		t.Errorf("after s s r: sort %v desc %v, want container ascending (rate → rtt → container)", m.sortBy, m.desc)
	}
	m = drive(80, 24, append([]tea.Msg{snap(fixture(40))}, keys("f", "f")...)...)
	if m.filter != "h1-c2" {
		t.Errorf("f f: filter %q, want h1-c2", m.filter)
	}
	m = drive(80, 24, append([]tea.Msg{snap(fixture(40))}, keys("end", "down", "down")...)...)
	if m.offset != 40-m.tableRows() {
		t.Errorf("scrolled past the end: offset %d", m.offset)
	}
	// A new, shorter snapshot pulls the offset back.
	m = drive(80, 24, append(append([]tea.Msg{snap(fixture(40))}, keys("end")...), snap(fixture(3)))...)
	if m.offset != 0 {
		t.Errorf("offset %d after the table shrank to 3 rows", m.offset)
	}
	for _, k := range []tea.KeyMsg{{Type: tea.KeyCtrlC}, {Type: tea.KeyRunes, Runes: []rune("q")}} {
		_, cmd := drive(80, 24, snap(fixture(1))).Update(k)
		if cmd == nil || fmt.Sprint(cmd()) != fmt.Sprint(tea.Quit()) {
			t.Errorf("%v does not quit", k)
		}
	}
}

func TestSourceFeedsTheModel(t *testing.T) {
	src := &scriptedSource{results: []result{{err: errRefused}, {snap: fixture(2)}}}
	var m tea.Model = New(t.Context(), Options{Source: src})
	cmd := m.Init()
	for range 2 {
		m, cmd = m.Update(cmd())
	}
	got := m.(Model)
	if got.err != nil || got.snap == nil || len(got.snap.Connections) != 2 {
		t.Errorf("after an error and a snapshot: err %v, snap %v", got.err, got.snap)
	}
}

// TestUnknownTerminalSizeKeepsTheLayout: a terminal that reports no size
// yet (0×0) must not shrink the screen to "…"; the connection state shows
// at once in the default layout.
func TestUnknownTerminalSizeKeepsTheLayout(t *testing.T) {
	m := New(context.Background(), Options{Target: "/run/slim/control.sock"})
	next, _ := m.Update(tea.WindowSizeMsg{Width: 0, Height: 0})
	view := next.(Model).View()
	if !strings.Contains(view, "connecting to /run/slim/control.sock") {
		t.Errorf("view after a 0×0 size does not show the connection state:\n%s", view)
	}
	if lines := strings.Count(view, "\n") + 1; lines != defaultHeight {
		t.Errorf("view has %d lines, want the default %d", lines, defaultHeight)
	}
}
