package secure

import (
	"net/netip"
	"testing"
)

func TestNetAndMaskAsTheProgramsReadThem(t *testing.T) {
	tests := []struct {
		prefix    string
		net, mask uint32 // network-order bytes read little-endian
	}{
		{"198.19.0.0/16", 0x000013c6, 0x0000ffff},
		{"198.19.1.7/24", 0x000113c6, 0x00ffffff},
		{"198.19.1.2/32", 0x020113c6, 0xffffffff},
		{"0.0.0.0/0", 0, 0},
	}
	for _, tt := range tests {
		net, mask := netAndMask(netip.MustParsePrefix(tt.prefix))
		if net != tt.net || mask != tt.mask {
			t.Errorf("%s: net %#x mask %#x, want %#x %#x", tt.prefix, net, mask, tt.net, tt.mask)
		}
	}
	if net, mask := netAndMask(netip.Prefix{}); net != 0 || mask != 0 {
		t.Errorf("zero prefix: %#x/%#x, want any", net, mask)
	}
}

func TestPortsInNetworkOrder(t *testing.T) {
	if got := be16(0x1f90); got != 0x901f { // 8080
		t.Errorf("be16(8080) = %#x", got)
	}
	a := netip.MustParseAddr("198.19.2.3")
	if got := addrOf(be32(a)); got != a {
		t.Errorf("addrOf(be32(%v)) = %v", a, got)
	}
}

func TestDeniesFirstMatchWins(t *testing.T) {
	web := netip.MustParseAddr("198.19.1.2")
	db := netip.MustParseAddrPort("198.19.2.5:5432")
	rules := []BPFRule{
		{From: netip.MustParsePrefix("198.19.1.2/32"), To: netip.MustParsePrefix("198.19.2.5/32"), PortMin: 5432, PortMax: 5432},
		{To: netip.MustParsePrefix("198.19.2.0/24"), Deny: true},
	}
	if Denies(rules, web, db) {
		t.Error("the allow rule comes first and matches")
	}
	if !Denies(rules, netip.MustParseAddr("198.19.1.3"), db) {
		t.Error("another source falls to the deny rule")
	}
	if !Denies(rules, web, netip.MustParseAddrPort("198.19.2.5:22")) {
		t.Error("another port falls to the deny rule")
	}
	if Denies(rules, web, netip.MustParseAddrPort("198.19.3.1:80")) {
		t.Error("no rule matches: allowed")
	}
	never := BPFRule{From: netip.PrefixFrom(netip.IPv4Unspecified(), 32), Deny: true}
	if Denies([]BPFRule{never}, web, db) {
		t.Error("a rule for a container this router does not serve must match nothing")
	}
}
