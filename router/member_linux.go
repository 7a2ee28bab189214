package router

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/slimnet/slim/cluster"
)

// recordMember writes MemberFile for the member the store made this host.
func recordMember(c Config, m cluster.Member) error {
	if err := makeRouterDir(c.Dir); err != nil {
		return err
	}
	data, err := json.Marshal(memberRecord{ID: m.ID, Underlay: m.Underlay, Subnet: m.Subnet})
	if err != nil {
		return err
	}
	tmp := c.MemberPath() + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("recording this host's subnet: %w", err)
	}
	return os.Rename(tmp, c.MemberPath())
}
