package cluster

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestStaticStore(t *testing.T) {
	h1, h2 := member("198.18.0.1", 1), member("198.18.0.2", 2)
	s, err := NewStatic(testNetwork, []Member{h1, h2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	self := Self{ID: h1.ID, Underlay: h1.Underlay, Network: testNetwork}
	got, err := s.Join(ctx, self)
	if err != nil || got != h1 {
		t.Fatalf("join: %v %v", got, err)
	}
	state, changed := s.State()
	if len(state.Members()) != 2 {
		t.Fatalf("members: %v", state.Members())
	}
	s.PublishListeners([]Listener{listenerOf(h1, 2, 80)})
	<-changed
	if err := s.SetListeners(h2.ID, []Listener{listenerOf(h2, 2, 80)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetListeners(h2.ID, []Listener{listenerOf(h1, 3, 80)}); err == nil {
		t.Error("a peer's listener in another host's subnet was taken")
	}
	state, _ = s.State()
	if len(state.Directory(h1.ID)) != 1 || len(state.Directory("")) != 2 {
		t.Errorf("directory: %v", state.Directory(""))
	}
	p, err := s.EditPolicy(ctx, func(old []byte) ([]byte, error) { return []byte(`{"version":1}`), nil })
	if err != nil || p.Revision != 1 {
		t.Errorf("policy: %v %v", p, err)
	}
	if h := s.Health(); !h.Connected || h.Backend != "static" || h.Listeners != 2 {
		t.Errorf("health: %+v", h)
	}
}

func TestStaticStoreRefusesBadHosts(t *testing.T) {
	h1 := member("198.18.0.1", 1)
	dup := member("198.18.0.2", 2)
	dup.Subnet = h1.Subnet
	if _, err := NewStatic(testNetwork, []Member{h1, dup}); err == nil || !strings.Contains(err.Error(), "another host's") {
		t.Errorf("two hosts with one subnet: %v", err)
	}
	s, err := NewStatic(testNetwork, []Member{h1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Join(context.Background(), Self{ID: "198.18.0.9", Underlay: netip.MustParseAddr("198.18.0.9"), Network: testNetwork})
	if err == nil {
		t.Error("a host that is not configured joined")
	}
}
