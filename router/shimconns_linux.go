package router

import (
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// shimIdleTimeout drops a shim connection that sends no request for this
// long while it has not completed one, and any idle connection of a
// caller outside the registered containers. A shim sends its request as
// soon as it connects, then keeps the connection for the life of its
// thread, idle between requests: once a container's connection has
// completed a request it is never dropped for idleness (its number is
// bounded by limits.shim_connections instead).
const shimIdleTimeout = 10 * time.Second

// connOwner is what a shim connection counts against: the registered
// container of the caller (by network namespace), or, for any other
// caller, its user.
type connOwner struct {
	container string
	uid       uint32
}

// unknownUID stands for a caller whose credentials the kernel could not
// give: all such callers share one share.
const unknownUID = ^uint32(0)

func ownerOf(who caller, idErr error) connOwner {
	if idErr == nil && who.Container != nil {
		return connOwner{container: who.Container.Name}
	}
	if who.PID == 0 {
		return connOwner{uid: unknownUID}
	}
	return connOwner{uid: who.UID}
}

// shimConns counts the open shim connections of each owner.
type shimConns struct {
	mu   sync.Mutex
	held map[connOwner]int
}

// admit counts one more connection of owner, or says why not.
func (s *shimConns) admit(owner connOwner, limits Limits) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = map[connOwner]int{}
	}
	n := s.held[owner]
	switch {
	case owner.container != "" && n >= limits.ShimConnections:
		return refuse(unix.EUSERS, "container %s holds %d router connections, its limit (limits.shim_connections)", owner.container, n)
	case owner.container == "" && n >= limits.StrangerConnections:
		return refuse(unix.EUSERS, "uid %d holds %d router connections from outside every registered container, its limit (limits.stranger_connections)", owner.uid, n)
	}
	s.held[owner] = n + 1
	return nil
}

func (s *shimConns) release(owner connOwner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[owner]--; s.held[owner] <= 0 {
		delete(s.held, owner)
	}
}

// readDeadline is how long a connection may wait for its next request:
// see shimIdleTimeout. The zero time is no deadline.
func readDeadline(owner connOwner, completed bool, now time.Time) time.Time {
	if owner.container != "" && completed {
		return time.Time{}
	}
	return now.Add(shimIdleTimeout)
}

// passCredentials turns SO_PASSCRED on: every datagram then comes with
// the sender's credentials, an empty one too, so that the router can tell
// an empty datagram (which gets an ERROR) from the end of the connection
// (a zero-length read either way on SOCK_SEQPACKET).
func passCredentials(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var optErr error
	if err := raw.Control(func(fd uintptr) {
		optErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	if optErr != nil {
		return fmt.Errorf("SO_PASSCRED: %w", optErr)
	}
	return nil
}
