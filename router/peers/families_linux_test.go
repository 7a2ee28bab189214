package peers

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/census"
	"github.com/slimnet/slim/router/protocol"
)

// TestExchangeCarriesFamilies: between two routers that both understand
// directory flags, a listener's flags (IPv6 clients, IPv6 only) reach
// the peer, an IPv6-only listener beside an IPv4 one on the same port
// included.
func TestExchangeCarriesFamilies(t *testing.T) {
	a, b := loopbackRouters(t, 1, 1)
	run(t, a.ex, b.ex)
	over := netip.AddrPortFrom(a.host.Subnet.Addr().Next().Next(), 80)
	host := netip.AddrPortFrom(a.host.Underlay, 40000)
	want := []protocol.Mapping{
		{Overlay: over, Host: host},
		{Overlay: over, Host: netip.AddrPortFrom(a.host.Underlay, 40001), Flags: protocol.DirFlagIPv6 | protocol.DirFlagNoIPv4},
		{Overlay: netip.AddrPortFrom(over.Addr().Next(), 443), Host: netip.AddrPortFrom(a.host.Underlay, 40002), Flags: protocol.DirFlagIPv6},
	}
	a.dir.setLocal(want...)
	b.dir.waitRemote(t, a.host.Underlay, want)
}

// TestPushToAnOlderPeer: to an acceptor that does not announce
// PeerFeatureFamilies, the pusher sends the 12-byte form its decoder
// expects, with IPv6-only listeners left out (it would send IPv4 clients
// to them) and no flags; once one announces it, the flags follow.
func TestPushToAnOlderPeer(t *testing.T) {
	h := netip.MustParseAddr("127.0.0.1")
	mappings := []protocol.Mapping{
		{Overlay: netip.MustParseAddrPort("10.1.0.5:80"), Host: netip.AddrPortFrom(h, 40000), Flags: protocol.DirFlagIPv6},
		{Overlay: netip.MustParseAddrPort("10.1.0.5:81"), Host: netip.AddrPortFrom(h, 40001), Flags: protocol.DirFlagIPv6 | protocol.DirFlagNoIPv4},
	}
	dir := newFakeDirectory(mappings...)
	e := New(Config{
		Self: overlay.HostPlan{Underlay: h, Subnet: netip.MustParsePrefix("10.1.0.0/24")}, Key: testKey(t, 1),
		Directory: dir, Clients: census.New(), Log: slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
	})
	pusher, acceptor := peerConns(t, testKey(t, 1), testKey(t, 1))
	features := newAcceptorFeatures()
	acks := make(chan error, 1)
	go func() { acks <- e.readAcks(pusher, netip.MustParseAddr("127.0.0.2"), features) }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.pushLoop(ctx, pusher, netip.MustParseAddr("127.0.0.2"), features, acks)

	read := func() (protocol.Message, []protocol.Mapping) {
		t.Helper()
		acceptor.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			msg, err := acceptor.read()
			if err != nil {
				t.Fatal(err)
			}
			if msg.Type != protocol.TypeDirectory {
				continue
			}
			_, ms, err := protocol.DecodeDirectoryOf(msg.Payload, msg.ID)
			if err != nil {
				t.Fatal(err)
			}
			return msg, ms
		}
	}
	msg, got := read()
	if legacy := []protocol.Mapping{{Overlay: mappings[0].Overlay, Host: mappings[0].Host}}; msg.ID&protocol.PeerFeatureFamilies != 0 || !slices.Equal(got, legacy) {
		t.Fatalf("to a peer not known to take flags: id %#x, %v; want %v without the flag", msg.ID, got, legacy)
	}
	// What an older router's decoder reads: the 12-byte form exactly.
	if _, _, err := protocol.DecodeDirectory(msg.Payload); err != nil {
		t.Errorf("an older peer cannot read it: %v", err)
	}
	acceptor.write(protocol.Message{Type: protocol.TypeDirectoryAck, ID: protocol.PeerFeatureClients | protocol.PeerFeatureFamilies, Payload: protocol.EncodeDirectoryAck(1)})
	msg, got = read()
	if msg.ID&protocol.PeerFeatureFamilies == 0 || !slices.Equal(got, mappings) {
		t.Errorf("once the peer announced flags: id %#x, %v; want %v", msg.ID, got, mappings)
	}
}
