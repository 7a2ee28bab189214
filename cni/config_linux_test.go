package cni

import (
	"encoding/json"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/slimnet/slim/router"
	"github.com/slimnet/slim/router/registration"
)

// testNetwork writes a router config with two config containers (.2, .3)
// and returns the plugin configuration's JSON with extra fields.
func testNetwork(t *testing.T, extra map[string]any) (routerDir string, conf []byte) {
	t.Helper()
	dir := t.TempDir()
	rc := router.Config{
		Dir: filepath.Join(dir, "router"), Overlay: "198.19.0.0/16", HostBits: 24, InsecurePeers: true,
		Hosts: []router.HostConfig{{Underlay: "198.18.0.1", Subnet: "198.19.1.0/24"}, {Underlay: "198.18.0.2", Subnet: "198.19.2.0/24"}},
		Containers: []router.ContainerConfig{
			{Name: "a", Netns: "/run/netns/a", Addr: "198.19.1.2"},
			{Name: "b", Netns: "/run/netns/b", Addr: "198.19.1.3"},
		},
	}
	path := filepath.Join(dir, "router.json")
	if err := rc.Save(path); err != nil {
		t.Fatal(err)
	}
	c := map[string]any{"cniVersion": "1.1.0", "name": "slim", "type": "slim", "routerConfig": path, "dataDir": filepath.Join(dir, "data")}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	conf, _ = json.Marshal(c)
	return rc.Dir, conf
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range []struct {
		extra map[string]any
		code  uint
		want  string
	}{
		{map[string]any{"routerConfig": nil}, 7, `"routerConfig" is required`},
		{map[string]any{"routerConfig": "/nonexistent/r.json"}, 7, "/nonexistent/r.json"},
		{map[string]any{"name": nil}, 7, `no "name"`},
		{map[string]any{"name": "../etc"}, 7, `network name "../etc"`},
		{map[string]any{"ipam": map[string]any{"type": "host-local"}}, 7, `"ipam" is not used`},
		{map[string]any{"rangeStart": "198.19.1.1"}, 7, "rangeStart 198.19.1.1 is the host's gateway"},
		{map[string]any{"rangeEnd": "banana"}, 7, `rangeEnd "banana" is not an IPv4 address`},
		{map[string]any{"rangeStart": "198.19.1.9", "rangeEnd": "198.19.1.8"}, 7, "rangeStart 198.19.1.9 is after rangeEnd 198.19.1.8"},
	} {
		_, conf := testNetwork(t, tt.extra)
		_, err := load(conf)
		var e *types.Error
		if !errors.As(err, &e) || e.Code != tt.code || !strings.Contains(e.Msg, tt.want) || !strings.HasPrefix(e.Msg, "slim: ") {
			t.Errorf("load with %v: %v, want code %d and %q", tt.extra, err, tt.code, tt.want)
		}
	}
	if _, err := load([]byte(`{"name":`)); err == nil || err.(*types.Error).Code != types.ErrDecodingFailure {
		t.Errorf("load of broken JSON: %v", err)
	}
}

// TestRangeSetSkipsOthersAddresses: the addresses handed out skip the
// config's containers and those registered by hand, not the CNI's own.
func TestRangeSetSkipsOthersAddresses(t *testing.T) {
	dir, conf := testNetwork(t, map[string]any{"rangeStart": "198.19.1.2", "rangeEnd": "198.19.1.20"})
	for name, rec := range map[string]registration.Record{
		"byhand": {Addr: netip.MustParseAddr("198.19.1.10")},
		"cni":    {Addr: netip.MustParseAddr("198.19.1.11"), ContainerID: "abc", IfName: "eth0"},
	} {
		rec.Name, rec.Netns, rec.NetnsInode, rec.Added = name, "/run/netns/"+name, 1, time.Now()
		if err := registration.Write(dir, rec); err != nil {
			t.Fatal(err)
		}
	}
	n, err := load(conf)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range n.rangeSet() {
		got = append(got, r.RangeStart.String()+"-"+r.RangeEnd.String())
	}
	if want := "198.19.1.4-198.19.1.9 198.19.1.11-198.19.1.20"; strings.Join(got, " ") != want {
		t.Errorf("ranges %v, want %s", got, want)
	}
}

func TestNamesAtTheRouter(t *testing.T) {
	dir, conf := testNetwork(t, nil)
	n, err := load(conf)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("3f9a0c1b2d4e", 6)
	for _, tt := range []struct {
		a    attachment
		want string
	}{
		{attachment{"ctr1", "eth0"}, "ctr1"},
		{attachment{long, "eth0"}, long[:12]},
		{attachment{"ctr1", "net1"}, "ctr1-net1"},
		{attachment{"ctr1", "we ird"}, hostVethName(attachment{"ctr1", "we ird"})},
	} {
		if got := n.nameFor(tt.a); got != tt.want {
			t.Errorf("nameFor(%v) = %q, want %q", tt.a, got, tt.want)
		}
	}
	taken := registration.Record{Name: long[:12], Netns: "/x", NetnsInode: 1, Addr: netip.MustParseAddr("198.19.1.9"), ContainerID: long[:12] + "ffff", IfName: "eth0"}
	if err := registration.Write(dir, taken); err != nil {
		t.Fatal(err)
	}
	if got := n.nameFor(attachment{long, "eth0"}); got != long[:63] {
		t.Errorf("nameFor with the short name taken = %q, want the long one", got)
	}
	if name := hostVethName(attachment{"ctr1", "eth0"}); !isHostVethName(name) || len(name) > 15 || isHostVethName("slim0") || isHostVethName("slim-vx") {
		t.Errorf("host end name %q", name)
	}
}
