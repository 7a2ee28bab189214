package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Static is the store of a cluster whose configuration lists every host
// (today's routers): the members and their subnets are fixed, this
// host's listeners are published at once (the router's peer exchange
// carries them to the peers), and the listeners peers send arrive
// through SetListeners. The policy is this router's own.
type Static struct {
	view    *View
	started time.Time

	mu         sync.Mutex
	self       string // "" until Join
	generation uint64
	closed     bool
}

// StaticID is the host ID a static cluster gives a host: its underlay
// address, which is what the peer exchange knows a peer by.
func StaticID(underlay string) string { return underlay }

// NewStatic is a static store of the hosts listed (each with its ID,
// underlay address and subnet).
func NewStatic(network Network, hosts []Member) (*Static, error) {
	if err := network.Check(); err != nil {
		return nil, err
	}
	var problems []string
	seen := map[string]bool{}
	view := NewView(NewState())
	refused := view.Update(func(b *Builder) {
		b.SetNetwork(network)
		for _, h := range hosts {
			if err := checkStaticHost(network, h, seen); err != nil {
				problems = append(problems, err.Error())
				continue
			}
			b.SetClaim(Claim{Subnet: h.Subnet, ID: h.ID, Underlay: h.Underlay})
			b.SetMember(h)
		}
	})
	if problems = append(problems, refused...); len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return &Static{view: view, started: time.Now()}, nil
}

func checkStaticHost(network Network, h Member, seen map[string]bool) error {
	self := Self{ID: h.ID, Underlay: h.Underlay, Subnet: h.Subnet, Network: network}
	if err := self.Check(); err != nil {
		return err
	}
	if !h.Subnet.IsValid() {
		return fmt.Errorf("host %s: no subnet", h.ID)
	}
	for _, key := range []string{"id " + h.ID, "underlay " + h.Underlay.String(), "subnet " + h.Subnet.String()} {
		if seen[key] {
			return fmt.Errorf("host %s: %s is another host's too", h.ID, key)
		}
		seen[key] = true
	}
	return nil
}

// Join checks that self is one of the configured hosts.
func (s *Static) Join(ctx context.Context, self Self) (Member, error) {
	state, _ := s.view.Current()
	m, ok := state.Member(self.ID)
	if !ok {
		return Member{}, fmt.Errorf("host %s is not in the configured host list", self.ID)
	}
	if m.Underlay != self.Underlay || (self.Subnet.IsValid() && m.Subnet != self.Subnet) {
		return Member{}, fmt.Errorf("host %s is configured as %s with subnet %s, not %s with %s", self.ID, m.Underlay, m.Subnet, self.Underlay, self.Subnet)
	}
	if self.Network != state.Network() {
		return Member{}, fmt.Errorf("host %s: overlay %s/%d is not the cluster's %s/%d", self.ID,
			self.Network.Overlay, self.Network.HostBits, state.Network().Overlay, state.Network().HostBits)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Member{}, ErrClosed
	}
	s.self = self.ID
	return m, nil
}

// State is the configured hosts and the listeners known.
func (s *Static) State() (*State, <-chan struct{}) { return s.view.Current() }

// PublishListeners makes listeners this host's, at once.
func (s *Static) PublishListeners(listeners []Listener) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.self == "" || s.closed {
		return s.generation
	}
	s.generation++
	ls := slices.Clone(listeners)
	s.view.Update(func(b *Builder) { b.SetListeners(s.self, ls) })
	return s.generation
}

// WaitPublished returns at once: a static store has nothing to wait for
// (the peer exchange acknowledges directories itself).
func (s *Static) WaitPublished(ctx context.Context, generation uint64) error { return nil }

// SetListeners records the listeners a peer sent over the peer exchange.
// Listeners that are not the peer's own are refused whole.
func (s *Static) SetListeners(id string, listeners []Listener) error {
	state, _ := s.view.Current()
	m, ok := state.Member(id)
	if !ok {
		return fmt.Errorf("host %s is not in the configured host list", id)
	}
	if err := m.CheckListeners(listeners); err != nil {
		return err
	}
	ls := slices.Clone(listeners)
	s.view.Update(func(b *Builder) { b.SetListeners(id, ls) })
	return nil
}

// EditPolicy changes the policy in memory; the router keeps its own
// copy on disk.
func (s *Static) EditPolicy(ctx context.Context, edit func([]byte) ([]byte, error)) (Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Policy{}, ErrClosed
	}
	state, _ := s.view.Current()
	rules, err := edit(state.Policy().Rules)
	if err != nil {
		return Policy{}, err
	}
	p := Policy{Rules: slices.Clone(rules), Revision: state.Policy().Revision + 1}
	s.view.Update(func(b *Builder) { b.SetPolicy(p) })
	return p, nil
}

// Health of a static store: always connected (there is no backend).
func (s *Static) Health() Health {
	state, _ := s.view.Current()
	return Health{
		Backend:   "static",
		Joined:    true,
		Connected: true,
		Since:     s.started,
		Revision:  int64(s.generationNow()),
		Members:   len(state.Members()),
		Listeners: state.ListenerCount(),
	}
}

func (s *Static) generationNow() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.generation
}

// Leave closes the store: a static cluster has no place to give up.
func (s *Static) Leave(ctx context.Context) error { return s.Close() }

// Close stops the store.
func (s *Static) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
