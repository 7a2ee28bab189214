package cluster

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// State is the cluster as a store last saw it. It is never modified once
// returned: a change makes a new State (sharing what did not change).
type State struct {
	revision  int64
	network   Network
	members   map[string]Member
	claims    map[netip.Prefix]Claim
	listeners map[string][]Listener // as published, checked or not
	valid     map[string][]Listener // of members whose claims agree
	policy    Policy
	count     int // listeners in valid
}

// NewState is an empty state.
func NewState() *State {
	return &State{
		members:   map[string]Member{},
		claims:    map[netip.Prefix]Claim{},
		listeners: map[string][]Listener{},
		valid:     map[string][]Listener{},
	}
}

// Revision is the backend's revision this state reflects.
func (s *State) Revision() int64 { return s.revision }

// Network is the cluster's overlay layout (zero until known).
func (s *State) Network() Network { return s.network }

// Policy is the cluster's policy.
func (s *State) Policy() Policy { return s.policy }

// Member returns a host's member record, if the host is a member whose
// subnet claim agrees with it.
func (s *State) Member(id string) (Member, bool) {
	m, ok := s.members[id]
	return m, ok && s.trusted(m)
}

// Members lists the members whose subnet claims agree with their
// records, by ID.
func (s *State) Members() []Member {
	ms := make([]Member, 0, len(s.members))
	for _, m := range s.members {
		if s.trusted(m) {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return ms
}

// trusted says whether a member's subnet is claimed for it at its
// underlay address: a record naming another host's subnet is ignored.
func (s *State) trusted(m Member) bool {
	c, ok := s.claims[m.Subnet]
	return ok && c.ID == m.ID && c.Underlay == m.Underlay
}

// Claims lists the held subnets, by subnet: the hosts the overlay routes
// to (members, and hosts within their grace period).
func (s *State) Claims() []Claim {
	cs := slices.Collect(maps.Values(s.claims))
	slices.SortFunc(cs, func(a, b Claim) int { return a.Subnet.Addr().Compare(b.Subnet.Addr()) })
	return cs
}

// Listeners are a member's checked listeners.
func (s *State) Listeners(id string) []Listener { return s.valid[id] }

// ListenerCount is the number of checked listeners of every member.
func (s *State) ListenerCount() int { return s.count }

// Directory lists every member's checked listeners except those of the
// host named except ("" for none).
func (s *State) Directory(except string) []Listener {
	out := make([]Listener, 0, s.count)
	for id, ls := range s.valid {
		if id != except {
			out = append(out, ls...)
		}
	}
	return out
}

// Edit starts a change of s; s itself stays as it is.
func (s *State) Edit() *Builder {
	next := *s
	return &Builder{state: &next}
}
