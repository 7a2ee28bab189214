package router

import (
	"strings"
	"testing"
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
