package router

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// storeSubnetConfig is a router config on etcd that leaves this host's
// subnet to the store, with extra fields spliced in.
func storeSubnetConfig(t *testing.T, dir, extra string) string {
	t.Helper()
	return writeConfig(t, `{"dir": "`+dir+`", "overlay": "198.19.0.0/16", "host_bits": 24,
	  "hosts": [{"underlay": "198.18.0.1"}], "self": 0`+extra+`,
	  "cluster": {"store": "etcd", "host_id": "h1", "etcd": {"endpoints": ["https://198.18.0.101:2379"],
	    "ca_file": "/ca", "cert_file": "/c", "key_file": "/k"}}}`)
}

// TestConfigSubnetFromStore: a config on etcd may leave the host's subnet
// out; it loads, its Plan says clearly why there is none yet, and once
// the router recorded the subnet the store gave it, the programs that read
// the config (CNI plugin, slim overlay up) get that subnet.
func TestConfigSubnetFromStore(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadConfig(storeSubnetConfig(t, dir, ""))
	if err != nil {
		t.Fatalf("a cluster config without this host's subnet: %v", err)
	}
	if !c.SubnetFromStore() {
		t.Fatal("SubnetFromStore is false")
	}
	if _, err := c.Plan(); err == nil || !strings.Contains(err.Error(), "has not recorded one") {
		t.Errorf("Plan before the join: %v", err)
	}
	if _, err := c.WithStoreSubnet(); err == nil || !strings.Contains(err.Error(), "start slim router first") {
		t.Errorf("WithStoreSubnet before the join: %v", err)
	}
	writeMember(t, dir, `{"id": "h1", "underlay": "198.18.0.1", "subnet": "198.19.7.0/24"}`)
	joined, err := c.WithStoreSubnet()
	if err != nil {
		t.Fatal(err)
	}
	plan, err := joined.Plan()
	if err != nil || plan.Hosts[0].Subnet.String() != "198.19.7.0/24" {
		t.Fatalf("plan after the join: %+v, %v", plan.Hosts, err)
	}
	if c.Hosts[0].Subnet != "" {
		t.Error("WithStoreSubnet changed the configuration it was called on")
	}
}

// TestConfigSubnetFromStoreRefusals: containers listed outside the
// subnet the store gave, and a record of another host, are refused,
// naming why.
func TestConfigSubnetFromStoreRefusals(t *testing.T) {
	dir := t.TempDir()
	withContainer := `, "containers": [{"name": "c1", "netns": "/run/netns/c1", "addr": "198.19.7.2"}]`
	c, err := LoadConfig(storeSubnetConfig(t, dir, withContainer))
	if err != nil {
		t.Fatalf("containers with a subnet from the store: %v", err)
	}
	writeMember(t, dir, `{"id": "h1", "underlay": "198.18.0.1", "subnet": "198.19.8.0/24"}`)
	joined, err := c.WithStoreSubnet()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := joined.Plan(); err == nil || !strings.Contains(err.Error(), "198.19.7.2") {
		t.Errorf("a container outside the subnet the store gave: %v", err)
	}
	writeMember(t, dir, `{"id": "h9", "underlay": "198.18.0.9", "subnet": "198.19.9.0/24"}`)
	if _, err := c.WithStoreSubnet(); err == nil || !strings.Contains(err.Error(), "198.18.0.9") {
		t.Errorf("another host's record: %v", err)
	}
	writeMember(t, dir, `not json`)
	if _, err := c.WithStoreSubnet(); err == nil || !strings.Contains(err.Error(), "not a member record") {
		t.Errorf("a bad record: %v", err)
	}
}

func writeMember(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, MemberFile), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
