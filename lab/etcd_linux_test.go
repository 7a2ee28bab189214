package lab

import (
	"net/netip"
	"strings"
	"testing"
)

func TestSpecStore(t *testing.T) {
	if err := (Spec{Name: "x", Hosts: 2, Store: "consul"}).Validate(); err == nil || !strings.Contains(err.Error(), `"consul"`) {
		t.Errorf("an unknown store: %v", err)
	}
	if err := (Spec{Name: "x", Hosts: 2, Store: StoreEtcd}).Validate(); err != nil {
		t.Errorf("etcd: %v", err)
	}
}

// TestRouterConfigOnEtcd: a router of a lab on etcd lists itself alone
// and names the lab's etcd, its CA and its own certificate; it passes the
// router's own checks.
func TestRouterConfigOnEtcd(t *testing.T) {
	l := &Lab{Name: "x", Store: StoreEtcd, Hosts: []Host{
		{Name: "h1", Netns: "x-h1", Wire: netip.MustParsePrefix("198.18.0.1/24"), Subnet: netip.MustParsePrefix("198.19.1.0/24")},
		{Name: "h2", Netns: "x-h2", Wire: netip.MustParsePrefix("198.18.0.2/24"), Subnet: netip.MustParsePrefix("198.19.2.0/24")},
	}, Etcd: []EtcdMember{{Name: "e1", Netns: "x-e1", Addr: netip.MustParseAddr("198.18.0.101")}}}
	c := l.RouterConfig(1)
	if len(c.Hosts) != 1 || c.Self != 0 || c.Hosts[0].Subnet != "198.19.2.0/24" {
		t.Fatalf("hosts %+v self %d", c.Hosts, c.Self)
	}
	if c.Cluster == nil || c.Cluster.HostID != "h2" || !strings.HasSuffix(c.Cluster.Etcd.CertFile, "/h2.pem") ||
		c.Cluster.Etcd.Endpoints[0] != "https://198.18.0.101:2379" {
		t.Fatalf("cluster section %+v", c.Cluster)
	}
	if err := c.Cluster.Check(len(c.Hosts)); err != nil {
		t.Fatal(err)
	}
}
