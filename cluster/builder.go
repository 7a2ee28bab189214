package cluster

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Builder makes a new State from an old one. Maps are copied on their
// first change, so a change costs the number of hosts, not of listeners.
type Builder struct {
	state    *State
	copied   [4]bool // members, claims, listeners, valid
	dirty    map[string]bool
	problems []string
}

func (b *Builder) touch(id string) {
	if b.dirty == nil {
		b.dirty = map[string]bool{}
	}
	b.dirty[id] = true
}

func (b *Builder) members() map[string]Member {
	if !b.copied[0] {
		b.state.members, b.copied[0] = maps.Clone(b.state.members), true
	}
	return b.state.members
}

func (b *Builder) claims() map[netip.Prefix]Claim {
	if !b.copied[1] {
		b.state.claims, b.copied[1] = maps.Clone(b.state.claims), true
	}
	return b.state.claims
}

func (b *Builder) listeners() map[string][]Listener {
	if !b.copied[2] {
		b.state.listeners, b.copied[2] = maps.Clone(b.state.listeners), true
	}
	return b.state.listeners
}

func (b *Builder) valid() map[string][]Listener {
	if !b.copied[3] {
		b.state.valid, b.copied[3] = maps.Clone(b.state.valid), true
	}
	return b.state.valid
}

// SetRevision records the backend revision the state reflects.
func (b *Builder) SetRevision(rev int64) { b.state.revision = rev }

// SetNetwork records the cluster's overlay layout.
func (b *Builder) SetNetwork(n Network) { b.state.network = n }

// SetPolicy records the cluster's policy.
func (b *Builder) SetPolicy(p Policy) { b.state.policy = p }

// SetMember records a member.
func (b *Builder) SetMember(m Member) {
	if old, ok := b.state.members[m.ID]; ok && old == m {
		return
	}
	b.members()[m.ID] = m
	b.touch(m.ID)
}

// DeleteMember forgets a member.
func (b *Builder) DeleteMember(id string) {
	if _, ok := b.state.members[id]; !ok {
		return
	}
	delete(b.members(), id)
	b.touch(id)
}

// SetClaim records a subnet claim.
func (b *Builder) SetClaim(c Claim) {
	if old, ok := b.state.claims[c.Subnet]; ok {
		if old == c {
			return
		}
		b.touch(old.ID)
	}
	b.claims()[c.Subnet] = c
	b.touch(c.ID)
}

// DeleteClaim forgets a subnet claim.
func (b *Builder) DeleteClaim(subnet netip.Prefix) {
	old, ok := b.state.claims[subnet]
	if !ok {
		return
	}
	delete(b.claims(), subnet)
	b.touch(old.ID)
}

// SetListeners records a host's published listeners (checked in Done).
func (b *Builder) SetListeners(id string, ls []Listener) {
	b.listeners()[id] = ls
	b.touch(id)
}

// DeleteListeners forgets a host's listeners.
func (b *Builder) DeleteListeners(id string) {
	if _, ok := b.state.listeners[id]; !ok {
		return
	}
	delete(b.listeners(), id)
	b.touch(id)
}

// Reset empties everything but the revision, for a full re-read.
func (b *Builder) Reset() {
	fresh := NewState()
	fresh.revision = b.state.revision
	for id := range b.state.members {
		b.touch(id)
	}
	for id := range b.state.listeners {
		b.touch(id)
	}
	for id := range b.state.valid {
		b.touch(id)
	}
	b.state = fresh
	b.copied = [4]bool{true, true, true, true}
}

// Problems lists the records Done refused since the builder was made.
func (b *Builder) Problems() []string { return b.problems }

// Done checks the listeners of every host whose records changed against
// its member record and returns the new state.
func (b *Builder) Done() *State {
	s := b.state
	for id := range b.dirty {
		before := len(s.valid[id])
		ls, err := b.check(id)
		if err != nil {
			b.problems = append(b.problems, err.Error())
		}
		if ls == nil {
			if _, ok := s.valid[id]; ok {
				delete(b.valid(), id)
			}
		} else {
			b.valid()[id] = ls
		}
		s.count += len(ls) - before
	}
	b.dirty = nil
	return s
}

// check returns a host's listeners if the host is a trusted member and
// they are all its own; nil otherwise.
func (b *Builder) check(id string) ([]Listener, error) {
	s := b.state
	ls, ok := s.listeners[id]
	if !ok {
		return nil, nil
	}
	m, ok := s.members[id]
	if !ok || !s.trusted(m) {
		return nil, nil // not (yet) a member: its listeners wait
	}
	if err := m.CheckListeners(ls); err != nil {
		return nil, fmt.Errorf("ignoring host %s's listeners: %w", id, err)
	}
	return slices.Clip(ls), nil
}
