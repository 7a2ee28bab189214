package router

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// container is a registered container of this host.
type container struct {
	Name  string
	Addr  netip.Addr
	Netns uint64 // inode of its network namespace
	// pool counts the host sockets it holds (poolquota_linux.go).
	pool *poolAccount
}

// containerSet is the registered containers, by network namespace and by
// name: shim connections look their callers up in it, the sweep and the
// control API list it.
type containerSet struct {
	mu      sync.RWMutex
	byNetns map[uint64]*container
	byName  map[string]*container
}

func newContainerSet() *containerSet {
	return &containerSet{byNetns: map[uint64]*container{}, byName: map[string]*container{}}
}

// lookup finds the container of a network namespace (nil: none).
func (s *containerSet) lookup(netns uint64) *container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byNetns[netns]
}

// list returns the containers sorted by name.
func (s *containerSet) list() []*container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cs := make([]*container, 0, len(s.byName))
	for _, c := range s.byName {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *container) int { return strings.Compare(a.Name, b.Name) })
	return cs
}

func (s *containerSet) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byName)
}

// add registers c unless its network namespace is another container's.
func (s *containerSet) add(c *container) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other := s.byNetns[c.Netns]; other != nil {
		return fmt.Errorf("container %s: its netns is the network namespace of container %s too; each container has one of its own", c.Name, other.Name)
	}
	s.byName[c.Name], s.byNetns[c.Netns] = c, c
	return nil
}

// addresses maps each container to its overlay address.
func (s *containerSet) addresses() map[string]netip.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	addrs := make(map[string]netip.Addr, len(s.byName))
	for name, c := range s.byName {
		addrs[name] = c.Addr
	}
	return addrs
}

// close releases the containers' pool witnesses (the sockets they
// witness are the containers' and live on).
func (s *containerSet) close() {
	for _, c := range s.list() {
		if c.pool != nil {
			c.pool.witness.close()
		}
	}
}
