package router

import (
	"strings"
	"testing"

	"github.com/slimnet/slim/cluster/etcd"
)

func TestClusterConfigCheck(t *testing.T) {
	good := ClusterConfig{Store: "etcd", Etcd: etcd.Config{
		Endpoints: []string{"https://198.18.0.101:2379"}, CAFile: "/ca", CertFile: "/c", KeyFile: "/k",
	}}
	if err := good.Check(1); err != nil {
		t.Fatalf("a good section: %v", err)
	}
	if err := good.Check(3); err == nil || !strings.Contains(err.Error(), "list this host alone") {
		t.Errorf("three hosts with etcd: %v", err)
	}
	bad := good
	bad.Store = "consul"
	if err := bad.Check(1); err == nil || !strings.Contains(err.Error(), `"consul"`) {
		t.Errorf("unknown store: %v", err)
	}
	bad = good
	bad.Etcd.Endpoints = []string{"http://198.18.0.101:2379"}
	if err := bad.Check(1); err == nil {
		t.Error("a plain http endpoint was accepted")
	}
}

// TestLoadConfigClusterSection: the section is part of the strict config
// file (an unknown field in it is refused).
func TestLoadConfigClusterSection(t *testing.T) {
	dir := t.TempDir()
	base := `{"dir": "` + dir + `", "overlay": "198.19.0.0/16", "host_bits": 24,
	  "hosts": [{"underlay": "198.18.0.1", "subnet": "198.19.1.0/24"}], "self": 0,
	  "cluster": {"store": "etcd", "host_id": "h1", "etcd": {"endpoints": ["https://198.18.0.101:2379"],
	    "ca_file": "/ca", "cert_file": "/c", "key_file": "/k"%s}}}`
	path := writeConfig(t, strings.Replace(base, "%s", "", 1))
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster == nil || c.Cluster.HostID != "h1" || c.Cluster.Etcd.CAFile != "/ca" {
		t.Fatalf("cluster section: %+v", c.Cluster)
	}
	path = writeConfig(t, strings.Replace(base, "%s", `, "password": "x"`, 1))
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("an unknown field in the etcd section: %v", err)
	}
}
