package router

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodConfig = `{
  "dir": "/run/slim", "overlay": "198.19.0.0/16", "host_bits": 24,
  "hosts": [{"underlay": "198.18.0.1", "subnet": "198.19.1.0/24"},
            {"underlay": "198.18.0.2", "subnet": "198.19.2.0/24"}],
  "self": 0, "key_file": "/etc/slim/cluster.key",
  "containers": [{"name": "web", "netns": "/run/netns/web", "addr": "198.19.1.2"},
                 {"name": "db", "netns": "/run/netns/db", "addr": "198.19.1.3"}]
}`

// TestLoadConfigMessages: every mistake in a router configuration file is
// refused with a message that names the field, the value and what is
// expected, and nothing is silently dropped or defaulted.
func TestLoadConfigMessages(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string // in goodConfig
		want    string
	}{
		{"misspelt field", [2]string{`"containers"`, `"containres"`}, `unknown field "containres"`},
		{"misspelt container field", [2]string{`"addr": "198.19.1.3"`, `"adr": "198.19.1.3"`}, `unknown field "adr"`},
		{"misspelt host field", [2]string{`"underlay": "198.18.0.2"`, `"underlya": "198.18.0.2"`}, `unknown field "underlya"`},
		{"trailing data", [2]string{`"addr": "198.19.1.3"}]
}`, `"addr": "198.19.1.3"}]
}}`}, "unexpected data after the JSON value"},
		{"wrong type", [2]string{`"self": 0`, `"self": "0"`}, `field "self" is a string, want a number`},
		{"port out of range", [2]string{`"self": 0,`, `"self": 0, "peer_port": 70000,`}, `field "peer_port": 70000 is out of range`},
		{"relative dir", [2]string{`"/run/slim"`, `"run/slim"`}, `dir "run/slim" must be an absolute path`},
		{"bad overlay", [2]string{`"198.19.0.0/16"`, `"198.19.0.0"`}, `overlay CIDR "198.19.0.0" is not a CIDR`},
		{"host_bits", [2]string{`"host_bits": 24`, `"host_bits": 8`}, "host_bits 8: a host's subnet must be longer than"},
		{"no hosts", [2]string{`[{"underlay": "198.18.0.1", "subnet": "198.19.1.0/24"},
            {"underlay": "198.18.0.2", "subnet": "198.19.2.0/24"}]`, `[]`}, "hosts: none given"},
		{"bad underlay", [2]string{`"198.18.0.2"`, `"h2"`}, `host 2: underlay "h2" is not an IP address`},
		{"bad subnet", [2]string{`"198.19.2.0/24"`, `"198.19.2.1/24"`}, `host 2 subnet "198.19.2.1/24" has host bits set`},
		{"self", [2]string{`"self": 0`, `"self": 2`}, "self 2 does not name one of the 2 hosts"},
		{"container without name", [2]string{`"name": "db", `, ``}, "container 2: no name"},
		{"name twice", [2]string{`"name": "db"`, `"name": "web"`}, "container web: the name is given twice"},
		{"no netns", [2]string{`"netns": "/run/netns/db", `, ``}, "container db: no netns"},
		{"relative netns", [2]string{`"/run/netns/db"`, `"db"`}, `container db: netns "db" must be an absolute path`},
		{"same netns", [2]string{`"/run/netns/db"`, `"/run/netns//web"`}, "container db: netns /run/netns//web is container web's too"},
		{"same address", [2]string{`"198.19.1.3"`, `"198.19.1.2"`}, "container db: address 198.19.1.2 is container web's too"},
		{"not an address", [2]string{`"198.19.1.3"`, `"db.local"`}, `container db: addr "db.local" is not an IPv4 address`},
		{"another host's subnet", [2]string{`"198.19.1.3"`, `"198.19.2.3"`}, "container db: addr 198.19.2.3 is not in this host's subnet 198.19.1.0/24; a container's address is from 198.19.1.2 to 198.19.1.254"},
		{"network address", [2]string{`"198.19.1.3"`, `"198.19.1.0"`}, "container db: addr 198.19.1.0 is the network address of subnet 198.19.1.0/24"},
		{"gateway", [2]string{`"198.19.1.3"`, `"198.19.1.1"`}, "container db: addr 198.19.1.1 is the host's gateway"},
		{"broadcast", [2]string{`"198.19.1.3"`, `"198.19.1.255"`}, "container db: addr 198.19.1.255 is the broadcast address of subnet 198.19.1.0/24"},
		{"secure without key", [2]string{`"key_file": "/etc/slim/cluster.key"`, `"secure": true`}, "secure mode needs a cluster key: set key_file"},
		{"IPv6 not a /96", [2]string{`"host_bits": 24`, `"host_bits": 24, "overlay_ipv6": "2001:2::/64"`}, `overlay_ipv6 "2001:2::/64": must be a /96`},
		{"IPv6 not a prefix", [2]string{`"host_bits": 24`, `"host_bits": 24, "overlay_ipv6": "2001:2::"`}, `overlay_ipv6 "2001:2::" is not a prefix such as 2001:2::/96`},
		{"IPv6 given IPv4", [2]string{`"host_bits": 24`, `"host_bits": 24, "overlay_ipv6": "198.19.0.0/16"`}, `overlay_ipv6 "198.19.0.0/16": not an IPv6 prefix`},
	}
	if _, err := LoadConfig(writeConfig(t, goodConfig)); err != nil {
		t.Fatalf("the good configuration: %v", err)
	}
	withIPv6 := strings.Replace(goodConfig, `"host_bits": 24`, `"host_bits": 24, "overlay_ipv6": "2001:2::/96"`, 1)
	if c, err := LoadConfig(writeConfig(t, withIPv6)); err != nil {
		t.Fatalf("a configuration with overlay_ipv6: %v", err)
	} else if plan, err := c.Plan(); err != nil || plan.Config.IPv6.String() != "2001:2::/96" {
		t.Fatalf("its plan: %v, %v", plan.Config.IPv6, err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(goodConfig, tt.replace[0]) {
				t.Fatalf("the test's configuration has no %s", tt.replace[0])
			}
			path := writeConfig(t, strings.Replace(goodConfig, tt.replace[0], tt.replace[1], 1))
			_, err := LoadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("LoadConfig: %v\nwant an error naming %s and saying %q", err, path, tt.want)
			}
		})
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "router.json")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigSaveIsPrivate: a saved configuration (it lists every
// container's namespace and address) is readable by root only, even over
// a file that was world-readable.
func TestConfigSaveIsPrivate(t *testing.T) {
	c, err := LoadConfig(writeConfig(t, goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "router.json")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("saved configuration: %v, %v; want mode 0600", st.Mode(), err)
	}
	if again, err := LoadConfig(path); err != nil || len(again.Containers) != 2 {
		t.Errorf("reloading the saved configuration: %+v, %v", again, err)
	}
}
