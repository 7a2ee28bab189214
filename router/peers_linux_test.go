package router

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/router/protocol"
)

// TestConfigPeerAuthentication: a router with peers and no cluster key
// refuses to start unless insecure_peers says otherwise, and the message
// names both ways out.
func TestConfigPeerAuthentication(t *testing.T) {
	two := []HostConfig{{Underlay: "198.18.0.1", Subnet: "198.19.1.0/24"}, {Underlay: "198.18.0.2", Subnet: "198.19.2.0/24"}}
	tests := []struct {
		name     string
		config   Config
		refused  bool
		insecure bool
	}{
		{"peers without a key", Config{Hosts: two}, true, false},
		{"peers with a key", Config{Hosts: two, KeyFile: "/etc/slim/cluster.key"}, false, false},
		{"peers, insecure_peers", Config{Hosts: two, InsecurePeers: true}, false, true},
		{"key and insecure_peers", Config{Hosts: two, KeyFile: "/k", InsecurePeers: true}, false, false},
		{"alone without a key", Config{Hosts: two[:1]}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.config.CheckPeerAuthentication()
			if (err != nil) != tt.refused {
				t.Fatalf("CheckPeerAuthentication() = %v, want refused=%v", err, tt.refused)
			}
			if err != nil {
				for _, want := range []string{"1 peer router", "no cluster key", "key_file", "--key-file", "insecure_peers", "--insecure-peers"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("message %q does not say %q", err, want)
					}
				}
			}
			if got := tt.config.UnauthenticatedPeers(); got != tt.insecure {
				t.Errorf("UnauthenticatedPeers() = %v, want %v", got, tt.insecure)
			}
		})
	}
}

// TestServePeerRefusesForeignMappings: an authenticated peer (127.0.0.1,
// subnet 10.1.1.0/24) that announces another host's container, points at
// another host, or gives port 0, is dropped, and the directory it sent
// before stays as it was.
func TestServePeerRefusesForeignMappings(t *testing.T) {
	good := protocol.Mapping{Overlay: netip.MustParseAddrPort("10.1.1.5:80"), Host: netip.MustParseAddrPort("127.0.0.1:40000")}
	tests := []struct {
		name string
		bad  protocol.Mapping
		says string
	}{
		{"another host's container", protocol.Mapping{Overlay: netip.MustParseAddrPort("10.1.0.5:80"), Host: good.Host}, "not in peer 127.0.0.1's subnet"},
		{"outside the overlay", protocol.Mapping{Overlay: netip.MustParseAddrPort("192.0.2.7:80"), Host: good.Host}, "not in peer 127.0.0.1's subnet"},
		{"a third host", protocol.Mapping{Overlay: good.Overlay, Host: netip.MustParseAddrPort("192.0.2.9:40000")}, "not peer 127.0.0.1's own"},
		{"this router's host", protocol.Mapping{Overlay: good.Overlay, Host: netip.MustParseAddrPort("192.0.2.1:40000")}, "not peer 127.0.0.1's own"},
		{"overlay port 0", protocol.Mapping{Overlay: netip.MustParseAddrPort("10.1.1.6:0"), Host: good.Host}, "port 0"},
		{"host port 0", protocol.Mapping{Overlay: good.Overlay, Host: netip.MustParseAddrPort("127.0.0.1:0")}, "port 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			r := acceptingRouter(t, &logs)
			p, a := loopbackPair(t)
			done := make(chan struct{})
			go func() { defer close(done); r.servePeer(a) }()
			pusher, err := dialPeerConn(p, testKey(t, 1), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			pushDirectory(t, pusher, 1, good)
			if ack, err := pusher.read(); err != nil || ack.Type != protocol.TypeDirectoryAck {
				t.Fatalf("good directory: %v, %v\n%s", ack.Type, err, logs.String())
			}
			pushDirectory(t, pusher, 2, good, tt.bad)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the router kept the connection of a peer that announced " + tt.name)
			}
			if out := logs.String(); !strings.Contains(out, "refusing directory") || !strings.Contains(out, tt.says) {
				t.Errorf("log %q does not say it refused the directory because %q", out, tt.says)
			}
			if n := r.listeners.remoteCount(netip.MustParseAddr("127.0.0.1")); n != 1 {
				t.Errorf("the peer has %d listeners after the refused directory, want its 1 from before", n)
			}
			for _, e := range r.listeners.entries() {
				if e.Overlay == tt.bad.Overlay && e.Host == tt.bad.Host {
					t.Errorf("the refused mapping %s → %s is in the directory", e.Overlay, e.Host)
				}
			}
		})
	}
}

func pushDirectory(t *testing.T, pusher *peerConn, version uint64, mappings ...protocol.Mapping) {
	t.Helper()
	payload, err := protocol.EncodeDirectory(version, mappings)
	if err != nil {
		t.Fatal(err)
	}
	if err := pusher.write(protocol.Message{Type: protocol.TypeDirectory, ID: peerFeatures, Payload: payload}); err != nil {
		t.Fatal(err)
	}
}

// TestServePeerRefusesUnknownAddress: a connection to the peer port from
// an address that is no peer's underlay address is closed before anything
// is read, with a warning naming it.
func TestServePeerRefusesUnknownAddress(t *testing.T) {
	var logs syncBuffer
	r := acceptingRouter(t, &logs)
	r.plan.Hosts[1].Underlay = netip.MustParseAddr("192.0.2.2") // 127.0.0.1 is no longer a peer
	p, a := loopbackPair(t)
	done := make(chan struct{})
	go func() { defer close(done); r.servePeer(a) }()
	pushDirectory(t, &peerConn{conn: p}, 1, protocol.Mapping{
		Overlay: netip.MustParseAddrPort("10.1.1.5:80"), Host: netip.MustParseAddrPort("127.0.0.1:40000"),
	})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the router kept a connection from an address that is no peer's")
	}
	if out := logs.String(); !strings.Contains(out, "refusing directory from an unknown host") || !strings.Contains(out, "127.0.0.1") {
		t.Errorf("log %q does not name the refused address", out)
	}
	if len(r.listeners.entries()) != 0 {
		t.Errorf("the router published %v from an unknown host", r.listeners.entries())
	}
}
