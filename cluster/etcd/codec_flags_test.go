package etcd

import (
	"encoding/json"
	"net/netip"
	"slices"
	"testing"

	"github.com/slimnet/slim/cluster"
)

// TestListenersFlags: a host's listeners record keeps each listener's
// IPv6 flags, and routers from before them, which read "listeners"
// alone, never see an IPv6-only listener there.
func TestListenersFlags(t *testing.T) {
	ls := []cluster.Listener{
		{Overlay: netip.MustParseAddrPort("198.19.1.2:80"), Host: netip.MustParseAddrPort("198.18.0.1:40000")},
		{Overlay: netip.MustParseAddrPort("198.19.1.2:80"), Host: netip.MustParseAddrPort("198.18.0.1:40001"), Flags: flagIPv6 | flagNoIPv4},
		{Overlay: netip.MustParseAddrPort("198.19.1.3:443"), Host: netip.MustParseAddrPort("198.18.0.1:40002"), Flags: flagIPv6},
	}
	data, err := encodeListeners(ls)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeListeners(data)
	sortByHost := func(a, b cluster.Listener) int { return a.Host.Compare(b.Host) }
	slices.SortFunc(got, sortByHost)
	if err != nil || !slices.Equal(got, ls) {
		t.Fatalf("round trip: %v, %v; want %v", got, err, ls)
	}
	var old struct {
		Listeners [][2]netip.AddrPort `json:"listeners"`
	}
	if err := json.Unmarshal(data, &old); err != nil {
		t.Fatal(err)
	}
	for _, pair := range old.Listeners {
		if pair[1] == ls[1].Host {
			t.Errorf("an older router reads the IPv6-only listener %v as an IPv4 one: %s", pair, data)
		}
	}
	if _, err := decodeListeners([]byte(`{"listeners":[],"ipv6":[0]}`)); err == nil {
		t.Error("an IPv6 index past the listeners decoded")
	}
}
