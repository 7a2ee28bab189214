package ui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/slimnet/slim/control"
)

// Source gives the dashboard snapshots: Next blocks until the next one (or
// a failure, after which the next call retries). control.Watcher is one.
type Source interface {
	Next(ctx context.Context) (control.Snapshot, error)
}

// Messages the model takes.
type (
	// SnapshotMsg is a new snapshot from the router.
	SnapshotMsg struct{ Snapshot control.Snapshot }
	// ErrorMsg says the router could not be reached (At: when).
	ErrorMsg struct {
		Err error
		At  time.Time
	}
)

// Default terminal size until the terminal tells.
const (
	defaultWidth  = 80
	defaultHeight = 24
)

// Model is the dashboard's state.
type Model struct {
	source  Source
	ctx     context.Context
	target  string        // what is watched, for messages: the control socket
	retry   time.Duration // pace of retries, for messages
	width   int
	height  int
	snap    *control.Snapshot
	err     error
	errAt   time.Time
	sortBy  column
	desc    bool
	filter  string
	editing bool // typing a filter
	offset  int  // first table row shown
	help    bool
}

// Options configure a Model.
type Options struct {
	Source Source
	Target string        // the control socket's path, shown when it fails
	Retry  time.Duration // how often the source retries, shown when it fails
}

// New returns a dashboard over opts.Source, sorted by rate, busiest first.
func New(ctx context.Context, opts Options) Model {
	return Model{
		source: opts.Source, ctx: ctx, target: opts.Target, retry: opts.Retry,
		width: defaultWidth, height: defaultHeight, sortBy: colRate, desc: true,
	}
}

// Init starts reading snapshots.
func (m Model) Init() tea.Cmd { return m.next() }

// next reads the next snapshot from the source.
func (m Model) next() tea.Cmd {
	if m.source == nil {
		return nil
	}
	return func() tea.Msg {
		snap, err := m.source.Next(m.ctx)
		if err != nil {
			return ErrorMsg{Err: err, At: time.Now()}
		}
		return SnapshotMsg{Snapshot: snap}
	}
}

// Update applies one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case SnapshotMsg:
		snap := msg.Snapshot
		m.snap, m.err = &snap, nil
		m.clampOffset()
		return m, m.next()
	case ErrorMsg:
		if m.ctx != nil && m.ctx.Err() != nil {
			return m, tea.Quit
		}
		m.err, m.errAt = msg.Err, msg.At
		return m, m.next()
	case tea.WindowSizeMsg:
		// A terminal that has no size yet (a fresh pty, tmux before it is
		// attached) reports 0: keep the layout we have rather than
		// shrinking every line to "…".
		if msg.Width > 0 {
			m.width = msg.Width
		}
		if msg.Height > 0 {
			m.height = msg.Height
		}
		m.clampOffset()
		return m, nil
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if k.Type == tea.KeyCtrlC {
		return m, tea.Quit
	}
	if m.editing {
		switch k.Type {
		case tea.KeyEnter:
			m.editing = false
		case tea.KeyEsc:
			m.editing, m.filter = false, ""
		case tea.KeyBackspace:
			if r := []rune(m.filter); len(r) > 0 {
				m.filter = string(r[:len(r)-1])
			}
		case tea.KeyRunes, tea.KeySpace:
			m.filter += string(k.Runes)
		}
		m.offset = 0
		return m, nil
	}
	if m.help {
		switch k.String() {
		case "q":
			return m, tea.Quit
		case "?", "esc", "enter":
			m.help = false
		}
		return m, nil
	}
	switch k.String() {
	case "q":
		return m, tea.Quit
	case "?":
		m.help = true
	case "s", "right", "l":
		m.sortBy = (m.sortBy + 1) % numColumns
	case "S", "left", "h":
		m.sortBy = (m.sortBy + numColumns - 1) % numColumns
	case "1", "2", "3", "4", "5", "6", "7", "8":
		m.sortBy = column(k.String()[0] - '1')
	case "r":
		m.desc = !m.desc
	case "/":
		m.editing, m.filter = true, ""
	case "f":
		m.filter = m.nextContainer()
		m.offset = 0
	case "esc":
		m.filter = ""
	case "down", "j":
		m.offset++
	case "up", "k":
		m.offset--
	case "pgdown", " ":
		m.offset += m.tableRows()
	case "pgup":
		m.offset -= m.tableRows()
	case "home", "g":
		m.offset = 0
	case "end", "G":
		m.offset = len(m.rows())
	}
	m.clampOffset()
	return m, nil
}

// nextContainer cycles the filter through the router's containers.
func (m Model) nextContainer() string {
	if m.snap == nil || len(m.snap.Containers) == 0 {
		return ""
	}
	for i, c := range m.snap.Containers {
		if c.Name == m.filter {
			if i+1 < len(m.snap.Containers) {
				return m.snap.Containers[i+1].Name
			}
			return ""
		}
	}
	return m.snap.Containers[0].Name
}

func (m Model) rows() []row {
	if m.snap == nil {
		return nil
	}
	return rowsOf(m.snap.Connections, m.filter, m.sortBy, m.desc)
}

func (m *Model) clampOffset() {
	m.offset = min(m.offset, len(m.rows())-m.tableRows())
	m.offset = max(m.offset, 0)
}
