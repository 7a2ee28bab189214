package shimserver

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// IdleTimeout drops a shim connection that sends no request for this long
// while it has not completed one, and any idle connection of a caller
// outside the registered containers. A shim sends its request as soon as
// it connects, then keeps the connection for the life of its thread, idle
// between requests: once a container's connection has completed a
// request it is never dropped for idleness (its number is bounded by
// Limits.Containers instead).
const IdleTimeout = 10 * time.Second

// Owner is what a shim connection counts against: the registered
// container of the caller, or, for any other caller, its user.
type Owner struct {
	Container string // "" outside every registered container
	UID       uint32
}

// UnknownUID stands for a caller whose credentials the kernel could not
// give: all such callers share one share.
const UnknownUID = ^uint32(0)

// Limits bound the connections one owner may hold open at once.
type Limits struct {
	// Containers is the most connections of one registered container
	// (limits.shim_connections).
	Containers int
	// Strangers is the most connections of one user outside every
	// registered container (limits.stranger_connections).
	Strangers int
}

// connCounts counts the open connections of each owner.
type connCounts struct {
	mu   sync.Mutex
	held map[Owner]int
}

// admit counts one more connection of owner, or says why not.
func (c *connCounts) admit(owner Owner, limits Limits) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil {
		c.held = map[Owner]int{}
	}
	n := c.held[owner]
	switch {
	case owner.Container != "" && n >= limits.Containers:
		return Refuse(unix.EUSERS, "container %s holds %d router connections, its limit (limits.shim_connections)", owner.Container, n)
	case owner.Container == "" && n >= limits.Strangers:
		return Refuse(unix.EUSERS, "uid %d holds %d router connections from outside every registered container, its limit (limits.stranger_connections)", owner.UID, n)
	}
	c.held[owner] = n + 1
	return nil
}

func (c *connCounts) release(owner Owner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held[owner]--; c.held[owner] <= 0 {
		delete(c.held, owner)
	}
}

// readDeadline is how long a connection may wait for its next request:
// see IdleTimeout. The zero time is no deadline.
func readDeadline(owner Owner, completed bool, now time.Time) time.Time {
	if owner.Container != "" && completed {
		return time.Time{}
	}
	return now.Add(IdleTimeout)
}
