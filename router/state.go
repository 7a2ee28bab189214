package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// saveState writes this host's listeners, so that a restarted router keeps
// directing new connections to listeners that outlived it.
func (r *Router) saveState() error {
	ls, _ := r.listeners.snapshot()
	data, err := json.Marshal(ls)
	if err != nil {
		return err
	}
	tmp := r.config.statePath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.config.statePath())
}

// restoreState reloads the listeners a previous router saved. The sweep
// drops those whose host listener is gone.
func (r *Router) restoreState() error {
	data, err := os.ReadFile(r.config.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var ls []listener
	if err := json.Unmarshal(data, &ls); err != nil {
		return fmt.Errorf("%s: %w", r.config.statePath(), err)
	}
	for _, l := range ls {
		if r.self.Subnet.Contains(l.Overlay.Addr()) && l.Host.Addr() == r.self.Underlay {
			r.listeners.add(l)
		}
	}
	return nil
}
