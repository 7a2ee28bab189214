package ui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/slimnet/slim/control"
)

var (
	titleStyle   = lipgloss.NewStyle().Bold(true).Reverse(true)
	sectionStyle = lipgloss.NewStyle().Bold(true)
	headerStyle  = lipgloss.NewStyle().Bold(true).Underline(true)
	errorStyle   = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("9"))
	dimStyle     = lipgloss.NewStyle().Faint(true)
)

// fixedLines is the number of lines around the table: title, totals,
// status, section and column headers above; footnote, containers, policy,
// fallbacks and the key line below.
const fixedLines = 10

// tableRows is how many connections fit on the screen.
func (m Model) tableRows() int { return max(m.height-fixedLines, 1) }

// View renders the screen: exactly height lines of at most width cells.
func (m Model) View() string {
	lines := m.render(true)
	for len(lines) < m.height {
		lines = append(lines, "")
	}
	return strings.Join(lines[:m.height], "\n")
}

// RenderOnce renders a snapshot for a script (slim top --once): every
// connection, no key line, plain text.
func RenderOnce(snap control.Snapshot, width int) string {
	m := Model{snap: &snap, width: width, height: fixedLines + len(snap.Connections), sortBy: colRate, desc: true}
	return strings.Join(m.render(false), "\n") + "\n"
}

func (m Model) render(interactive bool) []string {
	w := m.width
	var out []string
	add := func(s string) { out = append(out, clip(s, w)) }
	add(titleStyle.Render(fit(m.title(), w)))
	add(m.totals())
	add(m.status())
	rows := m.rows()
	if interactive && m.help {
		add(sectionStyle.Render("KEYS"))
		for _, l := range helpLines {
			add(l)
		}
		return out
	}
	layout := layoutFor(w, m.containerWidth())
	add(m.tableTitle(len(rows)))
	add(headerStyle.Render(layout.header(m.sortBy, m.desc)))
	shown := rows
	if interactive {
		shown = rows[min(m.offset, len(rows)):min(m.offset+m.tableRows(), len(rows))]
	}
	hostOnly := false
	for _, r := range shown {
		add(layout.line(r, m.snap.Time))
		hostOnly = hostOnly || r.hostOnly
	}
	switch {
	case m.snap == nil:
		add(dimStyle.Render("  no data yet"))
	case len(rows) == 0 && m.filter != "":
		add(dimStyle.Render(fmt.Sprintf("  no accelerated connections of containers matching %q", m.filter)))
	case len(rows) == 0:
		add(dimStyle.Render("  no accelerated connections"))
	}
	for interactive && len(out) < 5+m.tableRows() {
		out = append(out, "")
	}
	if hostOnly {
		add(dimStyle.Render("* client's host address: its overlay address is known only to its own router"))
	} else {
		add("")
	}
	add(m.containers())
	add(m.policy())
	add(m.fallbacks())
	if interactive {
		add(dimStyle.Render(m.keyLine()))
	}
	return out
}

var helpLines = []string{
	"  ?            this help (? or Esc closes it)",
	"  q, Ctrl-C    quit",
	"  s / S, → / ← sort by the next / previous column",
	"  1 … 8        sort by column 1 … 8 (container … rtt)",
	"  r            reverse the sort order",
	"  /            filter by container: type, Enter keeps it, Esc clears it",
	"  f            filter: cycle through the containers",
	"  ↑ ↓ j k      scroll one line",
	"  PgUp PgDn    scroll one page; Home / End (g / G) to the ends",
	"",
	"  IN / OUT: bytes received / acknowledged by the kernel (tcp_info);",
	"  RATE: in + out per second over the router's last sweep (1 s);",
	"  RTT: the kernel's smoothed round-trip time of the host connection.",
	"  Counters are read from the host namespace with sock_diag.",
}

func (m Model) title() string {
	if m.snap == nil {
		return "slim top · " + m.target
	}
	r := m.snap.Router
	up := 0
	for _, p := range m.snap.Peers {
		if p.Connected {
			up++
		}
	}
	peers := fmt.Sprintf("peers %d/%d", up, len(m.snap.Peers))
	if r.InsecurePeers {
		peers += " UNAUTHENTICATED"
	}
	if s := r.Store; s != nil {
		peers += fmt.Sprintf(" · %s %d members", s.Backend, s.Members)
	}
	return fmt.Sprintf("slim top · %s %s · %s · up %s · %s · %s",
		r.Host, r.Subnet, r.Version, durationText(r.Uptime), peers, m.snap.Time.Format("15:04:05"))
}

// storeProblem says what is wrong with the router's cluster store, or "".
func (m Model) storeProblem() string {
	s := m.snap.Router.Store
	switch {
	case s == nil:
		return ""
	case !s.Connected:
		text := fmt.Sprintf("%s unreachable for %s, serving its state of revision %d", s.Backend, durationText(m.snap.Time.Sub(s.Since)), s.Revision)
		if !s.Joined {
			text = fmt.Sprintf("%s unreachable for %s, not joined: serving the saved state", s.Backend, durationText(m.snap.Time.Sub(s.Since)))
		}
		if s.Unpublished {
			text += fmt.Sprintf("; %d listener lists unpublished", s.Pending)
		}
		if s.LastError != "" {
			text += ": " + s.LastError
		}
		return text
	case s.Unpublished && m.snap.Time.Sub(s.PendingSince) > time.Second:
		return fmt.Sprintf("%s: this host's listeners unpublished for %s (retrying)", s.Backend, durationText(m.snap.Time.Sub(s.PendingSince)))
	}
	return ""
}

func (m Model) totals() string {
	if m.snap == nil {
		return ""
	}
	s := m.snap
	in, out := 0, 0
	for _, c := range s.Connections {
		if c.Role == control.RoleServer {
			in++
		} else {
			out++
		}
	}
	text := fmt.Sprintf("conns %d (%d out, %d in) · listeners %d", len(s.Connections)+s.ConnectionsTruncated, out, in, len(s.Listeners))
	if s.Shims.Reports == 0 {
		return text
	}
	return text + fmt.Sprintf(" · fallbacks %d", s.Shims.TotalFallbacks())
}

// setups is the line of setup statistics from the shims.
func (m Model) setups() string {
	s := m.snap.Shims
	if s.Reports == 0 {
		return "setups/s - · setup p50 - p99 - · no data from shims yet"
	}
	return fmt.Sprintf("setups/s %.1f · setup p50 %s p99 %s", s.SetupsPerSecond, quantileText(s, 0.5), quantileText(s, 0.99))
}

func quantileText(s control.ShimStats, q float64) string {
	bound, ok := s.SetupQuantile(q)
	switch {
	case bound == 0:
		return "-"
	case !ok:
		return "≥" + latencyText(bound)
	}
	return "≤" + latencyText(bound)
}

func (m Model) status() string {
	switch {
	case m.err != nil:
		text := "router unreachable, retrying"
		if m.retry > 0 {
			text += " every " + latencyText(m.retry)
		}
		if m.snap != nil {
			text += " (data of " + m.snap.Time.Format("15:04:05") + ")"
		}
		text += ": " + m.err.Error()
		return errorStyle.Render(clip(text, m.width))
	case m.snap != nil && m.snap.Router.SweepErr != "":
		return errorStyle.Render(clip("router cannot list host sockets: "+m.snap.Router.SweepErr, m.width))
	case m.snap != nil && m.storeProblem() != "":
		return errorStyle.Render(clip(m.storeProblem(), m.width))
	case m.snap == nil:
		return dimStyle.Render("connecting to " + m.target + " …")
	}
	return m.setups()
}

func (m Model) tableTitle(n int) string {
	text := fmt.Sprintf("CONNECTIONS %d", n)
	if m.filter != "" || m.editing {
		text += fmt.Sprintf(" · filter %q", m.filter)
		if m.editing {
			text += " (typing: Enter keeps, Esc clears)"
		}
	}
	text += fmt.Sprintf(" · sort %s %s", m.sortBy, map[bool]string{true: "▼", false: "▲"}[m.desc])
	if rows := m.tableRows(); n > rows {
		first := min(m.offset, n)
		text += fmt.Sprintf(" · %d-%d of %d", first+1, min(first+rows, n), n)
	}
	if m.snap != nil && m.snap.ConnectionsTruncated > 0 {
		text += fmt.Sprintf(" · %d more not sent by the router", m.snap.ConnectionsTruncated)
	}
	return sectionStyle.Render(clip(text, m.width))
}

func (m Model) containers() string {
	if m.snap == nil {
		return sectionStyle.Render("ACCELERATED FDS")
	}
	parts := make([]string, 0, len(m.snap.Containers))
	for _, c := range m.snap.Containers {
		text := fmt.Sprintf("%s %d", c.Name, c.FDs())
		var kinds []string
		if c.Connections > 0 {
			kinds = append(kinds, plural(c.Connections, "conn"))
		}
		if c.Listeners > 0 {
			kinds = append(kinds, plural(c.Listeners, "listener"))
		}
		if len(kinds) > 0 {
			text += " (" + strings.Join(kinds, ", ") + ")"
		}
		parts = append(parts, text)
	}
	if len(parts) == 0 {
		parts = append(parts, "no containers registered")
	}
	return sectionStyle.Render("ACCELERATED FDS ") + strings.Join(parts, " · ")
}

func (m Model) policy() string {
	if m.snap == nil {
		return sectionStyle.Render("POLICY")
	}
	if len(m.snap.Policy) == 0 {
		return sectionStyle.Render("POLICY ") + "no rules (policy arrives with secure mode)"
	}
	parts := make([]string, 0, len(m.snap.Policy))
	for i, p := range m.snap.Policy {
		parts = append(parts, fmt.Sprintf("%d. %s: %d hits", i+1, p.Rule, p.Hits))
	}
	return sectionStyle.Render("POLICY ") + strings.Join(parts, " · ")
}

func (m Model) fallbacks() string {
	if m.snap == nil {
		return sectionStyle.Render("FALLBACKS")
	}
	s := m.snap.Shims
	if s.Reports == 0 {
		return sectionStyle.Render("FALLBACKS ") + "no data from shims yet"
	}
	if len(s.Fallbacks) == 0 {
		return sectionStyle.Render("FALLBACKS ") + "none"
	}
	reasons := make([]string, 0, len(s.Fallbacks))
	for r := range s.Fallbacks {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if s.Fallbacks[reasons[i]] != s.Fallbacks[reasons[j]] {
			return s.Fallbacks[reasons[i]] > s.Fallbacks[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	parts := make([]string, 0, len(reasons))
	for _, r := range reasons {
		parts = append(parts, fmt.Sprintf("%s %d", strings.ReplaceAll(r, "_", " "), s.Fallbacks[r]))
	}
	return sectionStyle.Render("FALLBACKS ") + strings.Join(parts, " · ")
}

func (m Model) keyLine() string {
	if m.editing {
		return "filter: " + m.filter + "▏  Enter keep · Esc clear"
	}
	return "? help · q quit · s sort · r reverse · / filter · f container · ↑↓ scroll"
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// containerWidth is the widest container name in the snapshot.
func (m Model) containerWidth() int {
	w := 0
	if m.snap != nil {
		for _, c := range m.snap.Connections {
			w = max(w, lipgloss.Width(c.Container))
		}
	}
	return w
}
