package router

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/router/protocol"
)

// TestClusterCacheRoundTrip: the state a router on a store saved is what
// it serves from when it starts without the store, checked as the store
// checks records: a claim of this host's subnet or address, and a host's
// listeners outside its subnet or at another address, are dropped.
func TestClusterCacheRoundTrip(t *testing.T) {
	self := cluster.Member{ID: "h1", Underlay: netip.MustParseAddr("198.18.0.1"), Subnet: netip.MustParsePrefix("198.19.1.0/24")}
	h2, h3, h4 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3"), netip.MustParseAddr("198.18.0.4")
	claims := []cluster.Claim{
		{Subnet: netip.MustParsePrefix("198.19.2.0/24"), ID: "h2", Underlay: h2},
		{Subnet: netip.MustParsePrefix("198.19.3.0/24"), ID: "h3", Underlay: h3},
		{Subnet: netip.MustParsePrefix("198.19.4.0/24"), ID: "h4", Underlay: h4},
		{Subnet: self.Subnet, ID: "thief", Underlay: netip.MustParseAddr("198.18.0.9")},
	}
	good := []protocol.Mapping{{Overlay: netip.MustParseAddrPort("198.19.2.2:80"), Host: netip.MustParseAddrPort("198.18.0.2:40001")}}
	remote := map[netip.Addr][]protocol.Mapping{
		h2: good,
		h3: {{Overlay: netip.MustParseAddrPort("198.19.1.2:80"), Host: netip.MustParseAddrPort("198.18.0.3:40001")}}, // self's subnet
		h4: {{Overlay: netip.MustParseAddrPort("198.19.4.2:80"), Host: netip.MustParseAddrPort("198.18.0.2:40001")}}, // another address
	}
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := newClusterCache(42, claims, remote).save(path); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saved state: %v, mode %v; want 0600", err, st.Mode())
	}
	c, err := loadClusterCache(path, self)
	if err != nil {
		t.Fatal(err)
	}
	if c.Revision != 42 || !slices.Equal(c.Claims, claims[:3]) {
		t.Errorf("loaded revision %d, claims %v; want 42 and %v", c.Revision, c.Claims, claims[:3])
	}
	got := c.remote()
	if len(got) != 1 || !slices.Equal(got[h2], good) {
		t.Errorf("loaded listeners %v; want only h2's %v", got, good)
	}

	if c, err := loadClusterCache(filepath.Join(t.TempDir(), "none.json"), self); c != nil || err != nil {
		t.Errorf("no saved state: %v, %v; want nothing and no error", c, err)
	}
	if err := os.WriteFile(path, []byte(`{"version": 2}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadClusterCache(path, self); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("a state of another version: %v", err)
	}
}
