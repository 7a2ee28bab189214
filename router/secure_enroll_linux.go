package router

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/secure"
)

// enroll puts a process of a container (`slim exec`, before it starts the
// program) into the container's cgroup, where the policy also covers its
// connections over the overlay. Outside secure mode there is nothing to do.
func (r *Router) enroll(c *container, pid int, req request) (protocol.Message, error) {
	if len(req.Payload) != 0 || len(req.fds) != 0 {
		return protocol.Message{}, refuse(unix.EINVAL, "ENROLL carries nothing")
	}
	ok := protocol.Message{Type: protocol.TypeOK}
	s := r.secure
	if s == nil {
		return ok, nil
	}
	s.life.RLock()
	defer s.life.RUnlock()
	if s.stopped {
		return protocol.Message{}, refuse(unix.EAGAIN, "secure mode: the router is stopping")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir, _, err := s.cgroups.EnterContainer(c.Name, pid)
	if err != nil {
		return protocol.Message{}, refuse(unix.EPERM, "%v", err)
	}
	if err := s.guardContainer(c, dir); err != nil {
		return protocol.Message{}, refuse(unix.EPERM, "%v", err)
	}
	r.log.Debug("enrolled", "container", c.Name, "pid", pid, "cgroup", dir)
	return ok, nil
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

// checkEnrolled, in secure mode, gives host sockets (POOL, LISTEN) only to
// processes in their container's cgroup: those `slim exec` started, under
// the policy check and the ioctl guard. Others use the overlay.
func (r *Router) checkEnrolled(who caller, t protocol.Type) error {
	s := r.secure
	if s == nil || (t != protocol.TypePool && t != protocol.TypeListen) {
		return nil
	}
	want := s.cgroups.ContainerDir(who.Container.Name)
	got, err := secure.ProcessCgroup(int(who.PID))
	if err != nil {
		return fmt.Errorf("secure mode: process %d: %w", who.PID, err)
	}
	if got != want {
		return fmt.Errorf("secure mode: process %d of container %s was not started with slim exec (its cgroup is %s, not %s): no host sockets for it", who.PID, who.Container.Name, got, want)
	}
	return nil
}
