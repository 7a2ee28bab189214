package peers

import (
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/census"
	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/router/sockdiag"
)

// unknownFrame is a frame of a type no router defines yet.
func unknownFrame() protocol.Message {
	return protocol.Message{Type: 0x4f, ID: 0xffff, Payload: []byte("from a newer router")}
}

var (
	h1 = netip.MustParseAddr("198.18.0.1")
	h2 = netip.MustParseAddr("198.18.0.2")
)

func mapping(overlay, host string) protocol.Mapping {
	return protocol.Mapping{Overlay: netip.MustParseAddrPort(overlay), Host: netip.MustParseAddrPort(host)}
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

var (
	h1Listener = netip.MustParseAddrPort("198.18.0.1:40001") // h1-c1's 198.19.1.2:5201
	h2Listener = netip.MustParseAddrPort("198.18.0.2:40002") // h2-c1's 198.19.2.2:8080
)

func testDirectory() census.DirectoryView {
	l := census.Listener{Container: "h1-c1", Overlay: netip.MustParseAddrPort("198.19.1.2:5201")}
	return census.DirectoryView{
		LocalByHost: map[netip.AddrPort]census.Listener{h1Listener: l},
		OverlayOf: map[netip.AddrPort]netip.AddrPort{
			h1Listener: l.Overlay,
			h2Listener: netip.MustParseAddrPort("198.19.2.2:8080"),
		},
		ContainerAddr: map[string]netip.Addr{"h1-c1": netip.MustParseAddr("198.19.1.2"), "h1-c2": netip.MustParseAddr("198.19.1.3")},
	}
}

func sock(cookie uint64, state uint8, local, remote string, in, out uint64) census.Socket {
	return census.Socket{Cookie: cookie, State: state, Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), BytesIn: in, BytesOut: out, RTT: 150 * time.Microsecond}
}

// knownClients is how many clients of list the census can name: a sweep
// that finds a server connection from each client's host address fills
// in its overlay address only if the client's router sent it (CLIENTS).
func knownClients(c *census.Census, list []protocol.Mapping) int {
	server := netip.MustParseAddrPort("10.1.0.2:80")
	local := netip.MustParseAddrPort("192.0.2.1:40000")
	dir := census.DirectoryView{LocalByHost: map[netip.AddrPort]census.Listener{local: {Container: "c", Overlay: server}}}
	var sockets []census.Socket
	for i, m := range list {
		sockets = append(sockets, census.Socket{Cookie: uint64(1<<40 + i), State: sockdiag.Established, Local: local, Remote: m.Host})
	}
	c.Update(time.Now(), sockets, dir)
	known := 0
	for _, conn := range c.Connections() {
		if conn.Peer.IsValid() {
			known++
		}
	}
	return known
}

// loopbackClients is n client mappings of the peer 127.0.0.1.
func loopbackClients(n int) []protocol.Mapping {
	list := make([]protocol.Mapping, n)
	for i := range list {
		list[i] = protocol.Mapping{
			Overlay: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 1, byte(2 + i%250)}), uint16(20000+i)),
			Host:    netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(20000+i)),
		}
	}
	return list
}

func writeClients(t *testing.T, pusher *peerConn, list []protocol.Mapping) {
	t.Helper()
	payloads, err := protocol.EncodeClients(list)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range payloads {
		if err := pusher.write(protocol.Message{Type: protocol.TypeClients, ID: peerFeatures, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestServePeerTakesClients: the accepting router skips frames of types
// it does not know, applies a CLIENTS list sent in several messages,
// announces that it understands CLIENTS in its acknowledgement, refuses
// a list naming addresses outside the peer's subnet, and forgets the
// peer's list when the connection ends.
func TestServePeerTakesClients(t *testing.T) {
	var logs syncBuffer
	r, dir := acceptingExchange(t, &logs)
	loopback := netip.MustParseAddr("127.0.0.1")
	p, a := loopbackPair(t)
	done := make(chan struct{})
	go func() { defer close(done); r.servePeer(a) }()
	pusher, err := dialPeerConn(p, testKey(t, 1), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	list := loopbackClients(protocol.MaxClientsPerMessage + 2) // two messages
	pusher.write(unknownFrame())
	writeClients(t, pusher, list)
	pusher.write(unknownFrame())
	m := protocol.Mapping{Overlay: netip.MustParseAddrPort("10.1.1.5:80"), Host: netip.MustParseAddrPort("127.0.0.1:40000")}
	payload, _ := protocol.EncodeDirectory(1, []protocol.Mapping{m})
	pusher.write(protocol.Message{Type: protocol.TypeDirectory, Payload: payload})
	ack, err := pusher.read()
	if err != nil || ack.Type != protocol.TypeDirectoryAck || ack.ID&protocol.PeerFeatureClients == 0 {
		t.Fatalf("acknowledgement %v (id %#x), %v; want DIRECTORY_ACK announcing CLIENTS\n%s", ack.Type, ack.ID, err, logs.String())
	}
	got := knownClients(r.config.Clients.(*census.Census), list)
	if got != len(list) || dir.remoteCount(loopback) != 1 {
		t.Fatalf("the router holds %d client mappings and %d listeners of the peer, want %d and 1", got, dir.remoteCount(loopback), len(list))
	}

	writeClients(t, pusher, []protocol.Mapping{{
		Overlay: netip.MustParseAddrPort("10.1.0.9:20000"), // the router's own subnet
		Host:    netip.MustParseAddrPort("127.0.0.1:20000"),
	}})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the router kept a connection that sent a CLIENTS list outside the peer's subnet")
	}
	if out := logs.String(); !strings.Contains(out, "refusing CLIENTS") {
		t.Errorf("log %q does not say why the connection was dropped", out)
	}
	if knownClients(r.config.Clients.(*census.Census), list) != 0 {
		t.Error("the peer's list outlived its connection")
	}
}

// TestPushClients: the pushing router sends CLIENTS only once the peer
// said it understands them (skipping frames it does not know meanwhile),
// then after each sweep that changed the list, and never the same list
// twice on one connection.
func TestPushClients(t *testing.T) {
	var logs syncBuffer
	c := census.New()
	r := New(Config{Self: overlay.HostPlan{Underlay: h1}, Clients: c, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	t0 := time.Unix(1700000000, 0)
	c.HandedOut("h1-c2", []uint64{10, 11}, t0)
	sockets := []census.Socket{
		sock(10, sockdiag.Established, "198.18.0.1:50000", "198.18.0.2:40002", 1, 1),
		sock(11, sockdiag.Established, "198.18.0.1:50002", "198.18.0.2:40002", 1, 1),
	}
	c.Update(t0, sockets[:1], testDirectory())
	pusher, acceptor := peerConns(t, testKey(t, 1), testKey(t, 1))
	features := newAcceptorFeatures()
	s := &clientsPush{peer: h2, features: features}

	// next is what the acceptor reads after whatever pushClients sent and
	// a DIRECTORY marker: the CLIENTS lists, in order.
	next := func() [][]protocol.Mapping {
		t.Helper()
		if err := pusher.write(directoryMsg(1)); err != nil {
			t.Fatal(err)
		}
		var lists [][]protocol.Mapping
		readDirectoryWith(acceptor, func(msg protocol.Message) error {
			list, _, err := protocol.DecodeClients(msg.Payload)
			if err != nil || msg.ID != peerFeatures {
				t.Errorf("CLIENTS id %#x: %v", msg.ID, err)
			}
			lists = append(lists, list)
			return nil
		})
		return lists
	}
	wake, err := r.pushClients(pusher, s)
	if err != nil || len(next()) != 0 {
		t.Fatalf("CLIENTS sent (%v) to a peer that did not announce them", err)
	}

	go r.readAcks(pusher, h2, features)
	acceptor.write(unknownFrame())
	acceptor.write(protocol.Message{Type: protocol.TypeDirectoryAck, ID: peerFeatures, Payload: protocol.EncodeDirectoryAck(1)})
	select {
	case <-wake:
	case <-time.After(5 * time.Second):
		t.Fatal("an acknowledgement announcing CLIENTS did not wake the sender")
	}
	want := []protocol.Mapping{mapping("198.19.1.3:50000", "198.18.0.1:50000")}
	wake, err = r.pushClients(pusher, s)
	if lists := next(); err != nil || len(lists) != 1 || !slices.Equal(lists[0], want) {
		t.Fatalf("first CLIENTS: %v, %v; want %v", lists, err, want)
	}
	if _, err = r.pushClients(pusher, s); err != nil || len(next()) != 0 {
		t.Errorf("an unchanged list was sent again (%v)", err)
	}

	c.Update(t0.Add(time.Second), sockets, testDirectory())
	if !closed(wake) {
		t.Fatal("a sweep that added a client connection did not wake the sender")
	}
	want = append(want, mapping("198.19.1.3:50002", "198.18.0.1:50002"))
	if _, err = r.pushClients(pusher, s); err != nil {
		t.Fatal(err)
	}
	if lists := next(); len(lists) != 1 || !slices.Equal(lists[0], want) {
		t.Errorf("after the sweep: %v, want %v", lists, want)
	}
}
