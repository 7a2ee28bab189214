package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// MemberFile is the file in the router's directory where a router on a
// cluster store records the subnet the store gave its host, for the
// programs that read the router's configuration (the CNI plugin, slim
// overlay up) when the configuration names none.
const MemberFile = "member.json"

// memberRecord is MemberFile's content.
type memberRecord struct {
	ID       string       `json:"id"`
	Underlay netip.Addr   `json:"underlay"`
	Subnet   netip.Prefix `json:"subnet"`
}

// MemberPath is where the router records its host's subnet.
func (c Config) MemberPath() string { return filepath.Join(c.Dir, MemberFile) }

// SubnetFromStore says whether this host's subnet comes from the cluster
// store: a cluster section, and the host listed without a subnet.
func (c Config) SubnetFromStore() bool {
	return c.Cluster != nil && len(c.Hosts) == 1 && c.Hosts[0].Subnet == ""
}

// WithStoreSubnet returns the configuration with this host's subnet filled
// in from the router's MemberFile when it comes from the cluster store;
// otherwise c unchanged.
func (c Config) WithStoreSubnet() (Config, error) {
	if !c.SubnetFromStore() {
		return c, nil
	}
	data, err := os.ReadFile(c.MemberPath())
	if errors.Is(err, os.ErrNotExist) {
		return c, fmt.Errorf("this host's subnet comes from the cluster store, and its router has not joined yet (no %s): start slim router first", c.MemberPath())
	}
	if err != nil {
		return c, fmt.Errorf("reading the subnet the cluster store gave this host: %w", err)
	}
	var m memberRecord
	if err := json.Unmarshal(data, &m); err != nil || !m.Subnet.IsValid() {
		return c, fmt.Errorf("%s: not a member record (%v)", c.MemberPath(), err)
	}
	if m.Underlay.String() != c.Hosts[0].Underlay {
		return c, fmt.Errorf("%s: records host %s, the configuration is of %s", c.MemberPath(), m.Underlay, c.Hosts[0].Underlay)
	}
	c.Hosts = []HostConfig{{Underlay: c.Hosts[0].Underlay, Subnet: m.Subnet.String()}}
	return c, nil
}
