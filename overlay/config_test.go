package overlay

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseConfigDefaults(t *testing.T) {
	c, err := ParseConfig("198.19.0.0/16", 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.HostBits != DefaultHostBits || c.VNI != DefaultVNI || c.Port != DefaultPort || c.MTU() != 1450 {
		t.Errorf("defaults not applied: %+v (MTU %d)", c, c.MTU())
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		cidr     string
		hostBits int
		want     string
	}{
		{"198.19.0.0", 24, "is not a CIDR"},
		{"198.19.0.0/33", 24, "is not a CIDR"},
		{"banana", 24, "is not a CIDR"},
		{"198.19.3.4/16", 24, "did you mean 198.19.0.0/16"},
		{"2001:db8::/32", 64, "only IPv4"},
		{"198.19.0.0/16", 16, "must be longer than"},
		{"198.19.0.0/16", 31, "at most /30"},
	}
	for _, tt := range tests {
		_, err := ParseConfig(tt.cidr, tt.hostBits)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseConfig(%q, %d) = %v, want error containing %q", tt.cidr, tt.hostBits, err, tt.want)
		}
	}
}

func TestCheckUnderlayOverlap(t *testing.T) {
	c, _ := ParseConfig("198.19.0.0/16", 24)
	if err := c.CheckUnderlay(netip.MustParsePrefix("198.18.0.0/16")); err != nil {
		t.Errorf("disjoint underlay rejected: %v", err)
	}
	for _, u := range []string{"198.19.5.0/24", "198.18.0.0/15", "0.0.0.0/0"} {
		err := c.CheckUnderlay(netip.MustParsePrefix(u))
		if err == nil || !strings.Contains(err.Error(), "overlaps") {
			t.Errorf("underlay %s: got %v, want overlap error", u, err)
		}
	}
}

func TestHostSubnet(t *testing.T) {
	c, _ := ParseConfig("198.19.0.0/16", 24)
	for index, want := range map[int]string{0: "198.19.0.0/24", 1: "198.19.1.0/24", 255: "198.19.255.0/24"} {
		got, err := c.HostSubnet(index)
		if err != nil || got.String() != want {
			t.Errorf("HostSubnet(%d) = %v, %v; want %s", index, got, err, want)
		}
	}
	for _, index := range []int{-1, 256} {
		if _, err := c.HostSubnet(index); err == nil {
			t.Errorf("HostSubnet(%d) succeeded, want error", index)
		}
	}
}

func testPlan(t *testing.T) Plan {
	t.Helper()
	c, _ := ParseConfig("198.19.0.0/16", 24)
	return Plan{Config: c, Hosts: []HostPlan{
		{Underlay: netip.MustParseAddr("198.18.0.1"), Subnet: netip.MustParsePrefix("198.19.1.0/24")},
		{Underlay: netip.MustParseAddr("198.18.0.2"), Subnet: netip.MustParsePrefix("198.19.2.0/24")},
	}}
}

func TestPlanValidate(t *testing.T) {
	if err := testPlan(t).Validate(); err != nil {
		t.Fatalf("valid plan rejected: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Plan)
		want   string
	}{
		{"same subnet", func(p *Plan) { p.Hosts[1].Subnet = p.Hosts[0].Subnet }, "overlapping subnets"},
		{"subnet outside", func(p *Plan) { p.Hosts[1].Subnet = netip.MustParsePrefix("198.20.2.0/24") }, "inside overlay CIDR"},
		{"wrong size", func(p *Plan) { p.Hosts[1].Subnet = netip.MustParsePrefix("198.19.2.0/25") }, "is not a /24"},
		{"same underlay", func(p *Plan) { p.Hosts[1].Underlay = p.Hosts[0].Underlay }, "share underlay address"},
		{"underlay in overlay", func(p *Plan) { p.Hosts[1].Underlay = netip.MustParseAddr("198.19.9.9") }, "lies inside overlay CIDR"},
	}
	for _, tt := range tests {
		p := testPlan(t)
		p.Hosts = append([]HostPlan(nil), p.Hosts...)
		tt.mutate(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestTunnelAddressing(t *testing.T) {
	h := testPlan(t).Hosts[1]
	if h.Gateway().String() != "198.19.2.1" || h.TunnelAddr().String() != "198.19.2.0" {
		t.Errorf("gateway %s, tunnel %s", h.Gateway(), h.TunnelAddr())
	}
	if mac := h.TunnelMAC().String(); mac != "0a:58:c6:13:02:00" {
		t.Errorf("tunnel MAC %s", mac)
	}
	if peers := testPlan(t).Peers(0); len(peers) != 1 || peers[0] != h {
		t.Errorf("Peers(0) = %v", peers)
	}
}
