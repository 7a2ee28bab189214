package router

import (
	"fmt"

	"github.com/slimnet/slim/cluster/etcd"
)

// ClusterConfig is the "cluster" section of a router's configuration:
// where cluster state comes from (docs/cluster.md). Without it, the
// configuration's host list is the cluster (a static cluster).
type ClusterConfig struct {
	// Store is "etcd".
	Store string `json:"store"`
	// HostID names this host in the cluster (default: its underlay
	// address). With etcd's authentication on it is also the common name
	// of the host's client certificate.
	HostID string      `json:"host_id,omitempty"`
	Etcd   etcd.Config `json:"etcd"`
}

// Check says what is wrong with the section, naming the field.
func (c ClusterConfig) Check(hosts int) error {
	if c.Store != "etcd" {
		return fmt.Errorf("cluster store %q: the only store besides the host list is \"etcd\"", c.Store)
	}
	if hosts != 1 {
		return fmt.Errorf("cluster store etcd: list this host alone in hosts (its underlay address and subnet), not %d hosts: the others come from etcd", hosts)
	}
	return c.Etcd.Check()
}
