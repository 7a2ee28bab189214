package ui

import (
	"context"
	"fmt"

	tea "github.com/charmbracelet/bubbletea"
)

// Run shows the dashboard on the terminal until the user quits or ctx is
// done.
func Run(ctx context.Context, opts Options) error {
	p := tea.NewProgram(New(ctx, opts), tea.WithAltScreen(), tea.WithContext(ctx))
	if _, err := p.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	return nil
}
