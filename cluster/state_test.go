package cluster

import (
	"net/netip"
	"strings"
	"testing"
)

var testNetwork = Network{Overlay: netip.MustParsePrefix("198.19.0.0/16"), HostBits: 24}

func member(id string, i int) Member {
	return Member{
		ID:       id,
		Underlay: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}),
		Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i), 0}), 24),
	}
}

func listenerOf(m Member, last byte, port uint16) Listener {
	o := m.Subnet.Addr().As4()
	o[3] = last
	return Listener{Overlay: netip.AddrPortFrom(netip.AddrFrom4(o), port), Host: netip.AddrPortFrom(m.Underlay, 40000+port)}
}

func claimOf(m Member) Claim { return Claim{Subnet: m.Subnet, ID: m.ID, Underlay: m.Underlay} }

func TestStateListenersNeedATrustedMember(t *testing.T) {
	h1 := member("h1", 1)
	view := NewView(NewState())
	view.Update(func(b *Builder) { b.SetListeners("h1", []Listener{listenerOf(h1, 2, 80)}) })
	if s, _ := view.Current(); s.ListenerCount() != 0 {
		t.Fatalf("listeners of a host that is not a member count: %d", s.ListenerCount())
	}
	view.Update(func(b *Builder) { b.SetMember(h1) })
	if s, _ := view.Current(); s.ListenerCount() != 0 {
		t.Fatalf("listeners of a member without a subnet claim count: %d", s.ListenerCount())
	}
	view.Update(func(b *Builder) { b.SetClaim(claimOf(h1)) })
	s, _ := view.Current()
	if s.ListenerCount() != 1 || len(s.Directory("")) != 1 || len(s.Directory("h1")) != 0 {
		t.Fatalf("claimed member: %d listeners, directory %v", s.ListenerCount(), s.Directory(""))
	}
	view.Update(func(b *Builder) { b.DeleteMember("h1") })
	if s, _ := view.Current(); s.ListenerCount() != 0 || len(s.Members()) != 0 {
		t.Fatalf("after the member left: %d listeners, members %v", s.ListenerCount(), s.Members())
	}
}

// TestStateRefusesForeignRecords: a host that publishes a member record
// with another host's subnet, or listeners outside its own subnet or
// address, is ignored; the states before stay as they were.
func TestStateRefusesForeignRecords(t *testing.T) {
	h1, h2 := member("h1", 1), member("h2", 2)
	view := NewView(NewState())
	view.Update(func(b *Builder) {
		b.SetClaim(claimOf(h1))
		b.SetClaim(claimOf(h2))
		b.SetMember(h1)
		b.SetMember(h2)
	})
	before, _ := view.Current()
	thief := h2
	thief.Subnet = h1.Subnet
	view.Update(func(b *Builder) { b.SetMember(thief) })
	s, _ := view.Current()
	if _, ok := s.Member("h2"); ok {
		t.Errorf("a member record naming another host's subnet is trusted")
	}
	if m, ok := s.Member("h1"); !ok || m != h1 {
		t.Errorf("h1 after h2 claimed its subnet: %v %v", m, ok)
	}
	if _, ok := before.Member("h2"); !ok {
		t.Errorf("an edit changed an earlier state")
	}
	view.Update(func(b *Builder) { b.SetMember(h2) })
	problems := view.Update(func(b *Builder) { b.SetListeners("h2", []Listener{listenerOf(h1, 5, 80)}) })
	if len(problems) != 1 || !strings.Contains(problems[0], "not in host h2's subnet") {
		t.Errorf("problems: %q", problems)
	}
	foreignHost := listenerOf(h2, 5, 80)
	foreignHost.Host = netip.AddrPortFrom(h1.Underlay, 1234)
	problems = view.Update(func(b *Builder) { b.SetListeners("h2", []Listener{foreignHost}) })
	if len(problems) != 1 || !strings.Contains(problems[0], "not host h2's own") {
		t.Errorf("problems: %q", problems)
	}
	if s, _ := view.Current(); s.ListenerCount() != 0 {
		t.Errorf("foreign listeners count: %v", s.Directory(""))
	}
}

func TestStateReset(t *testing.T) {
	h1 := member("h1", 1)
	view := NewView(NewState())
	view.Update(func(b *Builder) {
		b.SetClaim(claimOf(h1))
		b.SetMember(h1)
		b.SetListeners("h1", []Listener{listenerOf(h1, 2, 80), listenerOf(h1, 2, 81)})
		b.SetRevision(7)
	})
	view.Update(func(b *Builder) { b.Reset() })
	s, _ := view.Current()
	if s.ListenerCount() != 0 || len(s.Members()) != 0 || len(s.Claims()) != 0 || s.Revision() != 7 {
		t.Fatalf("after a reset: %d listeners, %v, %v, revision %d", s.ListenerCount(), s.Members(), s.Claims(), s.Revision())
	}
}

func TestNetworkSubnets(t *testing.T) {
	if got := testNetwork.Subnet(5); got != netip.MustParsePrefix("198.19.5.0/24") {
		t.Errorf("subnet 5: %v", got)
	}
	n := Network{Overlay: netip.MustParsePrefix("198.19.0.0/16"), HostBits: 26}
	if n.Subnets() != 1024 || n.Subnet(1023) != netip.MustParsePrefix("198.19.255.192/26") {
		t.Errorf("/26: %d subnets, last %v", n.Subnets(), n.Subnet(1023))
	}
	for _, p := range []string{"198.19.5.0/25", "198.20.0.0/24", "198.19.5.1/24"} {
		if testNetwork.HasSubnet(netip.MustParsePrefix(p)) {
			t.Errorf("%s counts as a host subnet", p)
		}
	}
}

func TestNetworkDiffers(t *testing.T) {
	v4 := Network{Overlay: netip.MustParsePrefix("198.19.0.0/16"), HostBits: 24}
	with := func(n Network, p string) Network { n.IPv6 = netip.MustParsePrefix(p); return n }
	hostBits := v4
	hostBits.HostBits = 26
	for _, c := range []struct {
		recorded, mine Network
		differs        bool
	}{
		{v4, v4, false},
		{v4, hostBits, true},
		{v4, with(v4, "2001:2::/96"), false}, // a record from before IPv6 prefixes
		{with(v4, "2001:2::/96"), v4, false}, // a router without IPv6
		{with(v4, "2001:2::/96"), with(v4, "2001:2::/96"), false},
		{with(v4, "2001:2::/96"), with(v4, "2001:2:0:1::/96"), true},
	} {
		if err := c.recorded.Differs(c.mine); (err != nil) != c.differs {
			t.Errorf("%+v against the recorded %+v: %v", c.mine, c.recorded, err)
		}
	}
	for _, bad := range []string{"2001:2::/64", "::ffff:198.19.0.0/96", "2001:2::1/96"} {
		if err := with(v4, bad).Check(); err == nil {
			t.Errorf("overlay_ipv6 %s passed the check", bad)
		}
	}
	if err := with(v4, "2001:2::/96").Check(); err != nil {
		t.Error(err)
	}
}
