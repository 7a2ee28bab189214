package router

import (
	"fmt"
	"strings"
)

// stop is secure mode's part of a clean stop, once nothing is served. If no host socket the router made is open and no enrolled
// process is left, it detaches every program and removes every pin and
// cgroup. Otherwise it leaves them, guarding those sockets and processes,
// for a router that starts again (which takes them over) or for
// `slim router --cleanup`.
func (s *secureMode) stop() {
	s.life.Lock()
	defer s.life.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	if left := s.leftToGuard(); left != "" {
		s.abandon("still open: " + left)
		return
	}
	s.remove()
	s.log.Info("secure mode removed from the kernel: no host socket or enrolled process left to guard")
}

// remove detaches every program and removes every pin and empty cgroup.
func (s *secureMode) remove() {
	s.mu.Lock()
	for name, l := range s.containers {
		l.Unpin()
		l.Close()
		delete(s.containers, name)
	}
	s.mu.Unlock()
	if err := s.datapath.Remove(); err != nil {
		s.log.Warn("secure mode: removing programs and pins", "err", err)
	}
	if err := s.cgroups.Leave(); err != nil {
		s.log.Warn("secure mode: removing cgroups", "err", err)
	}
}

// leftToGuard says what still needs secure mode's programs: host sockets
// the router made that are open, enrolled processes; "" for nothing.
func (s *secureMode) leftToGuard() string {
	var left []string
	switch n, complete, err := s.datapath.LiveSockets(); {
	case err != nil:
		left = append(left, "host sockets that could not be counted ("+err.Error()+")")
	case !complete:
		left = append(left, "host sockets it did not track (made by an older router, or the table was full)")
	case n > 0:
		left = append(left, fmt.Sprintf("%d open host sockets", n))
	}
	if names := s.cgroups.PopulatedContainers(); len(names) > 0 {
		left = append(left, "processes enrolled in containers "+strings.Join(names, ", "))
	}
	return strings.Join(left, " and ")
}

// abandon lets go of secure mode and leaves it in the kernel:
// programs, pins and cgroups stay, guarding the sockets and processes.
func (s *secureMode) abandon(why string) {
	s.mu.Lock()
	for _, l := range s.containers {
		l.Close() // the pin keeps the check attached
	}
	s.mu.Unlock()
	s.datapath.Close()
	if err := s.cgroups.Release(); err != nil {
		s.log.Warn("secure mode: leaving the router's cgroup", "err", err)
	}
	s.log.Info("secure mode stays in the kernel, guarding what the router made; a router started again takes it over, `slim router --cleanup` removes it",
		"why", why, "bpffs", s.pinDir, "cgroups", s.cgroups.Base)
}
