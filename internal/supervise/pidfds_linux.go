package supervise

import (
	"sync"

	"golang.org/x/sys/unix"
)

// maxCachedPidfds bounds the pidfds kept; past it requests open their own.
const maxCachedPidfds = 4096

// pidfdCache keeps a thread pidfd (PIDFD_THREAD, Linux 6.9) per thread
// that made a trapped call, so that each later call of that thread saves
// opening one, checking the notification and closing it (three system
// calls). A thread pidfd names one thread for good: once that thread is
// gone, pidfd_getfd through it fails (ESRCH) even if its thread ID was
// reused, and the entry is dropped. Process pidfds (older kernels) are
// not kept: a reused thread ID could belong to another process.
type pidfdCache struct {
	mu    sync.Mutex
	byTID map[int]int
}

// get returns the cached pidfd of thread tid, or -1.
func (c *pidfdCache) get(tid int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fd, ok := c.byTID[tid]; ok {
		return fd
	}
	return -1
}

// put keeps fd as thread tid's pidfd; false if it is not kept (the
// caller closes it).
func (c *pidfdCache) put(tid, fd int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byTID == nil {
		c.byTID = map[int]int{}
	}
	if _, ok := c.byTID[tid]; ok || len(c.byTID) >= maxCachedPidfds {
		return false
	}
	c.byTID[tid] = fd
	return true
}

// drop forgets and closes thread tid's pidfd fd, if it is still the
// cached one (another request may have dropped it first).
func (c *pidfdCache) drop(tid, fd int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.byTID[tid]; ok && cur == fd {
		delete(c.byTID, tid)
		unix.Close(fd)
	}
}
