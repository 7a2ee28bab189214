package overlay

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseIPv6Prefix(t *testing.T) {
	if p, err := ParseIPv6Prefix("overlay_ipv6", "2001:2::/96"); err != nil || p != netip.MustParsePrefix("2001:2::/96") {
		t.Fatalf("2001:2::/96: %v, %v", p, err)
	}
	for text, want := range map[string]string{
		"2001:2::":         "not a prefix",
		"198.19.0.0/16":    "not an IPv6 prefix",
		"::ffff:0:0/96":    "not an IPv6 prefix",
		"2001:2::/64":      "must be a /96",
		"2001:2::1:0:0/96": "",
		"2001:2::5/96":     "host bits set; did you mean 2001:2::/96",
		"fe80::/96":        "not a unicast",
		"ff02::/96":        "not a unicast",
	} {
		_, err := ParseIPv6Prefix("overlay_ipv6", text)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", text, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", text, err, want)
		}
	}
}

// TestIPv6OfIsAFunctionOfTheIPv4Address: a container's IPv6 overlay
// address is the /96 with its IPv4 address as the last 32 bits, and back.
func TestIPv6OfIsAFunctionOfTheIPv4Address(t *testing.T) {
	c := Config{IPv6: netip.MustParsePrefix("2001:2::/96")}
	v4 := netip.MustParseAddr("198.19.1.2")
	v6 := c.IPv6Of(v4)
	if v6 != netip.MustParseAddr("2001:2::c613:102") {
		t.Fatalf("IPv6Of(%s) = %s", v4, v6)
	}
	if back, ok := c.IPv4Of(v6); !ok || back != v4 {
		t.Errorf("IPv4Of(%s) = %s, %v", v6, back, ok)
	}
	for _, other := range []string{"2001:3::c613:102", "::ffff:198.19.1.2", "198.19.1.2"} {
		if _, ok := c.IPv4Of(netip.MustParseAddr(other)); ok {
			t.Errorf("IPv4Of(%s) is an overlay address", other)
		}
	}
	if _, ok := (Config{}).IPv4Of(v6); ok {
		t.Error("IPv4Of without an IPv6 prefix found an address")
	}
	if got := c.IPv6Subnet(netip.MustParsePrefix("198.19.1.0/24")); got != netip.MustParsePrefix("2001:2::c613:100/120") {
		t.Errorf("IPv6Subnet(198.19.1.0/24) = %s", got)
	}
}

func TestValidateIPv6(t *testing.T) {
	p := testPlan(t)
	p.Config.IPv6 = netip.MustParsePrefix("2001:2::/96")
	if err := p.Validate(); err != nil {
		t.Fatalf("a plan with IPv6: %v", err)
	}
	p.Config.IPv6 = netip.MustParsePrefix("2001:2::/64")
	if err := p.Validate(); err == nil {
		t.Error("a /64 IPv6 prefix was accepted")
	}
	p.Config.IPv6 = netip.MustParsePrefix("2001:2::/96")
	p.Config.UnderlayMTU = 1300
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "1280") {
		t.Errorf("an overlay MTU under IPv6's 1280: %v", err)
	}
}
