package etcd

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/internal/pki"
)

func goodConfig() Config {
	return Config{Endpoints: []string{"https://198.18.0.101:2379"}, CAFile: "/ca.pem", CertFile: "/h1.pem", KeyFile: "/h1-key.pem"}
}

func TestConfigCheckNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Endpoints = nil }, "endpoints: none given"},
		{func(c *Config) { c.Endpoints = []string{"http://198.18.0.101:2379"} }, "mutual TLS only"},
		{func(c *Config) { c.Endpoints = []string{"198.18.0.101:2379"} }, "want https://HOST:PORT"},
		{func(c *Config) { c.CAFile = "" }, "ca_file: not given"},
		{func(c *Config) { c.KeyFile = "" }, "key_file: not given"},
		{func(c *Config) { c.Prefix = "slim" }, "prefix \"slim\""},
		{func(c *Config) { c.TTLSeconds = 1 }, "ttl_seconds 1"},
		{func(c *Config) { c.TTLSeconds, c.GraceSeconds = 30, 10 }, "grace_seconds 10"},
	} {
		c := goodConfig()
		tc.edit(&c)
		if err := c.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", c, err, tc.want)
		}
	}
	if err := goodConfig().Check(); err != nil {
		t.Errorf("a good config: %v", err)
	}
}

func TestNewRefusesUnreadableCertificates(t *testing.T) {
	dir := t.TempDir()
	c := goodConfig()
	c.CAFile, c.CertFile, c.KeyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "h1.pem"), filepath.Join(dir, "h1-key.pem")
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("missing certificate: %v", err)
	}
	ca, err := pki.NewAuthority("test")
	if err != nil {
		t.Fatal(err)
	}
	pair, _ := ca.Client("h1")
	if _, err := pair.Write(dir, "h1"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(c.CAFile, []byte("not a certificate"), 0o600)
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("bad CA file: %v", err)
	}
}

func TestKeysRoundTrip(t *testing.T) {
	k := keys{prefix: "/slim/"}
	subnet := netip.MustParsePrefix("198.19.4.0/24")
	for key, want := range map[string]parsed{
		k.network():         {kind: kindNetwork},
		k.policy():          {kind: kindPolicy},
		k.subnet(subnet):    {kind: kindClaim, subnet: subnet},
		k.member("h1"):      {kind: kindMember, id: "h1"},
		k.listeners("h1"):   {kind: kindListeners, id: "h1"},
		"/slim/hosts/h1/x":  {},
		"/slim/hosts/../m":  {},
		"/other/network":    {},
		"/slim/subnets/bad": {},
	} {
		if got := k.parse(key); got != want {
			t.Errorf("parse(%q) = %+v, want %+v", key, got, want)
		}
	}
}

// TestDecodeRefusesMismatchedRecords: a record whose content names
// another host or subnet than its key is refused.
func TestDecodeRefusesMismatchedRecords(t *testing.T) {
	m := cluster.Member{ID: "h2", Underlay: netip.MustParseAddr("198.18.0.2"), Subnet: netip.MustParsePrefix("198.19.2.0/24")}
	if _, err := decodeMember("h1", []byte(encode(m))); err == nil {
		t.Error("h1's member key holding h2's record was taken")
	}
	c := cluster.Claim{Subnet: m.Subnet, ID: "h2", Underlay: m.Underlay}
	if _, err := decodeClaim(netip.MustParsePrefix("198.19.1.0/24"), []byte(encode(c))); err == nil {
		t.Error("a claim key holding another subnet's claim was taken")
	}
	if _, err := decodeListeners([]byte(`{"listeners":[["198.19.2.2:80"]]}`)); err == nil {
		t.Error("a listener without a host address was taken")
	}
	ls := []cluster.Listener{{Overlay: netip.MustParseAddrPort("198.19.2.2:80"), Host: netip.MustParseAddrPort("198.18.0.2:4000")}}
	data, err := encodeListeners(ls)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeListeners(data); err != nil || len(got) != 1 || got[0] != ls[0] {
		t.Errorf("round trip: %v %v", got, err)
	}
}
