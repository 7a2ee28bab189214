package router

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/secure"
)

// enroll puts a process of a container (`slim exec`, under its ioctl guard,
// before it starts the program) into the container's cgroup, where it gets
// host sockets and the policy also covers its connections over the
// overlay. In secure mode the router first checks, with kernel facts, that
// the caller is slim exec under its guard (verifyGuarded); outside secure
// mode there is nothing to do (plainMode.enroll).
func (r *Router) enroll(who caller, req request) (protocol.Message, error) {
	if len(req.Payload) != 0 && len(req.Payload) != 4 || len(req.FDs) > 1 {
		return protocol.Message{}, refuse(unix.EINVAL, "ENROLL carries the listener's fd number and the guard's pidfd, or nothing")
	}
	return r.mode.enroll(who, req)
}

// enroll is secure mode's ENROLL, its shape checked.
func (s *secureMode) enroll(who caller, req request) (protocol.Message, error) {
	if len(req.Payload) != 4 || len(req.FDs) != 1 {
		return protocol.Message{}, refuse(unix.EPERM, "secure mode enrolls only a program that slim exec put under its ioctl guard: ENROLL must name the guard")
	}
	listener := int(binary.LittleEndian.Uint32(req.Payload))
	pid := int(who.PID)
	if err := s.binary.verifyGuarded(pid, who.Start, listener, req.FDs[0]); err != nil {
		return protocol.Message{}, refuse(unix.EPERM, "secure mode: not enrolled, no host sockets: %v", err)
	}
	s.life.RLock()
	defer s.life.RUnlock()
	if s.stopped {
		return protocol.Message{}, refuse(unix.EAGAIN, "secure mode: the router is stopping")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := who.Container
	dir, _, err := s.cgroups.EnterContainer(c.Name, pid)
	if err != nil {
		return protocol.Message{}, refuse(unix.EPERM, "%v", err)
	}
	if err := s.guardContainer(c, dir); err != nil {
		return protocol.Message{}, refuse(unix.EPERM, "%v", err)
	}
	s.log.Debug("enrolled", "container", c.Name, "pid", pid, "cgroup", dir)
	return protocol.Message{Type: protocol.TypeOK}, nil
}

// guardContainer attaches the overlay policy check to a container's
// cgroup, once, and tells it the container's address.
func (s *secureMode) guardContainer(c *container, dir string) error {
	id, err := secure.CgroupID(dir)
	if err != nil {
		return err
	}
	if _, ok := s.containers[c.Name]; !ok {
		l, err := s.datapath.AttachContainer(c.Name, dir, id)
		if err != nil {
			return err
		}
		s.containers[c.Name] = l
	}
	return s.datapath.SetContainer(id, c.Addr)
}

func dirExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// checkEnrolled, in secure mode, gives host sockets (POOL, LISTEN) and
// reservations (RESERVE) only to processes in their container's cgroup,
// which only enrolment (and root) puts them in, and under a seccomp
// filter: programs slim exec started under the ioctl guard, and what they
// start. Others use the overlay.
//
// It reads the kernel's word on every request: the cgroup (a process
// may be moved out of its container's), and last that the PID still
// names the process that connected, so that what was read was its own.
// Only the seccomp filter is read once per connection: the kernel never
// takes a filter off a thread, so a process seen under one stays under
// one (who.seen); the read that saw it, like every read, was confirmed
// to be of the caller by the start-time check that ended that request.
func (s *secureMode) checkEnrolled(who caller, t protocol.Type) error {
	if t != protocol.TypePool && t != protocol.TypeListen && t != protocol.TypeReserve {
		return nil
	}
	pid := int(who.PID)
	want := s.cgroups.ContainerDir(who.Container.Name)
	got, err := s.cgroups.ProcessDir(pid)
	if err != nil {
		return fmt.Errorf("secure mode: process %d: %w", pid, err)
	}
	if got != want {
		return fmt.Errorf("secure mode: process %d of container %s was not started with slim exec (its cgroup is %s, not %s): no host sockets for it", pid, who.Container.Name, got, want)
	}
	filtered := who.seen != nil && who.seen.filtered
	if !filtered {
		if err := checkFiltered(fmt.Sprintf("/proc/%d/status", pid)); err != nil {
			return fmt.Errorf("secure mode: process %d of container %s was not started with slim exec under the ioctl guard (%v): no host sockets for it", pid, who.Container.Name, err)
		}
	}
	if err := sameProcess(pid, who.Start); err != nil {
		return fmt.Errorf("secure mode: process %d: %w", pid, err)
	}
	if who.seen != nil {
		who.seen.filtered = true
	}
	return nil
}

// forget detaches the policy check from an unregistered container's
// cgroup (the cgroup stays while processes are in it).
func (s *secureMode) forget(c *container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.containers[c.Name]; ok {
		l.Unpin()
		l.Close()
		delete(s.containers, c.Name)
	}
}
