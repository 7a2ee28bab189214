package router

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slimnet/slim/cluster"
)

// recordMember writes MemberFile (at path) for the member the store made
// this host.
func recordMember(path string, m cluster.Member) error {
	if err := makeRouterDir(filepath.Dir(path)); err != nil {
		return err
	}
	data, err := json.Marshal(memberRecord{ID: m.ID, Underlay: m.Underlay, Subnet: m.Subnet})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("recording this host's subnet: %w", err)
	}
	return os.Rename(tmp, path)
}
