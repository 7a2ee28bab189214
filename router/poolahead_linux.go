package router

import (
	"time"

	"golang.org/x/sys/unix"
)

// Pool sockets made ahead. A shim asks for host sockets (POOL) when its
// pool is empty, and its connect waits for the answer. So that it waits
// only for the sockets to travel, the router makes (and in secure mode
// marks) the next batch of a shim connection once it has answered a POOL,
// and the next POOL of that connection takes it at once.
//
// Only connections that asked twice within poolAheadWindow get a batch
// made ahead (a program that makes a connection or two, curl, asks once),
// a batch is as big as the last POOL, and one nobody took for
// poolAheadIdle is closed by the sweep. A batch is witnessed, marked and
// counted against the container's quota like sockets handed out (it is
// the router's, but held for the container), made only while the
// container holds at most half its quota, and closed before a POOL would
// be refused for the quota. It is closed when its connection ends, when
// its container is unregistered and when the router stops, before secure
// mode counts the host sockets still open.

// poolAheadWindow: a connection whose POOL comes within this of its last
// one gets its next batch made ahead.
const poolAheadWindow = 2 * time.Second

// poolAheadIdle is how long a batch made ahead may wait untaken before
// the sweep closes it.
const poolAheadIdle = 5 * time.Second

// aheadBatch is the sockets made ahead for one shim connection's next
// POOL of one family, with their cookies.
type aheadBatch struct {
	fds     []int
	cookies []uint64
	made    time.Time // when it was last made or topped up
}

// take removes up to n sockets from the batch and returns them.
func (b *aheadBatch) take(n int) ([]int, []uint64) {
	n = min(n, len(b.fds))
	k := len(b.fds) - n
	fds, cookies := b.fds[k:], b.cookies[k:]
	b.fds, b.cookies = b.fds[:k:k], b.cookies[:k:k]
	return fds, cookies
}

// aheadShelf is a container's batches made ahead that wait for a POOL.
// It is guarded by its account's mutex. A batch taken off it (by the
// connection it was made for) is that connection's until it is put back.
type aheadShelf struct {
	closed  bool // the container was unregistered or the router stops
	batches map[*aheadBatch]struct{}
}

// shelve puts a batch on the container's shelf; if the shelf is closed
// it closes the batch instead (and it is no longer counted) and returns
// false.
func (a *poolAccount) shelve(b *aheadBatch) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ahead.closed {
		a.closeBatchLocked(b)
		return false
	}
	if a.ahead.batches == nil {
		a.ahead.batches = map[*aheadBatch]struct{}{}
	}
	a.ahead.batches[b] = struct{}{}
	return true
}

// unshelve takes a batch off the shelf for its connection: false if it is
// no longer there (closed since).
func (a *poolAccount) unshelve(b *aheadBatch) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.ahead.batches[b]; !ok {
		return false
	}
	delete(a.ahead.batches, b)
	return true
}

// discard closes a batch its connection holds (off the shelf).
func (a *poolAccount) discard(b *aheadBatch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closeBatchLocked(b)
}

// dropIdleAhead closes the batches on the shelf made before idleSince.
func (a *poolAccount) dropIdleAhead(idleSince time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dropAheadLocked(func(b *aheadBatch) bool { return b.made.Before(idleSince) })
}

// closeAhead closes every batch on the shelf and every batch put back
// from now on: the container is gone, or the router stops.
func (a *poolAccount) closeAhead() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ahead.closed = true
	a.dropAheadLocked(func(*aheadBatch) bool { return true })
}

// aheadSockets is how many sockets wait on the shelf.
func (a *poolAccount) aheadSockets() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for b := range a.ahead.batches {
		n += len(b.fds)
	}
	return n
}

// dropAheadLocked closes the batches on the shelf that drop says to and
// returns how many sockets it closed. The caller holds a.mu.
func (a *poolAccount) dropAheadLocked(drop func(*aheadBatch) bool) int {
	closed := 0
	for b := range a.ahead.batches {
		if drop(b) {
			delete(a.ahead.batches, b)
			closed += len(b.fds)
			a.closeBatchLocked(b)
		}
	}
	return closed
}

// closeBatchLocked closes a batch's sockets, which no longer count
// against the quota: the witness forgets them as they close, and held
// drops by as many, so that the next count and held agree. The caller
// holds a.mu, so no count runs in between.
func (a *poolAccount) closeBatchLocked(b *aheadBatch) {
	closeAll(b.fds)
	a.held = max(a.held-len(b.fds), a.pending)
	b.fds, b.cookies = nil, nil
}

// poolAhead is what one shim connection has of its next POOLs: per
// family (AF_INET, AF_INET6), the batch made ahead and when it asked
// last. Only the connection's goroutine uses it.
type poolAhead struct {
	families [2]aheadFamily
}

type aheadFamily struct {
	batch *aheadBatch // on the container's shelf (or closed since), or nil
	asked time.Time   // when its last POOL was answered
	count int         // what its last POOL asked for
	due   bool        // make a batch once the answer is sent
}

func familyIndex(family int) int {
	if family == unix.AF_INET6 {
		return 1
	}
	return 0
}

// take hands over up to n sockets of the batch made ahead for this
// connection, if it is still there; what is left goes back on the shelf.
func (p *poolAhead) take(c *container, family, n int) ([]int, []uint64) {
	if p == nil {
		return nil, nil
	}
	f := &p.families[familyIndex(family)]
	b := f.batch
	if b == nil || !c.pool.unshelve(b) {
		f.batch = nil
		return nil, nil
	}
	fds, cookies := b.take(n)
	if len(b.fds) == 0 || !c.pool.shelve(b) {
		f.batch = nil
	}
	return fds, cookies
}

// asked records a POOL answered at now: a batch is made ahead once the
// answer is sent if the connection asked before within poolAheadWindow.
func (p *poolAhead) asked(family, n int, now time.Time) {
	if p == nil {
		return
	}
	f := &p.families[familyIndex(family)]
	f.due = !f.asked.IsZero() && now.Sub(f.asked) < poolAheadWindow
	f.asked, f.count = now, n
}

// prepare makes the batches due for the connection's next POOLs (after
// the answer was sent): the batch left tops up to the count last asked.
func (r *Router) prepareAhead(c *container, p *poolAhead) {
	for i := range p.families {
		f := &p.families[i]
		if !f.due {
			continue
		}
		f.due = false
		family := unix.AF_INET
		if i == 1 {
			family = unix.AF_INET6
		}
		f.batch = r.topUpAhead(c, f.batch, family, f.count)
	}
}

// topUpAhead makes b (a new batch if nil or closed) hold up to want
// sockets of family and puts it on the shelf; it returns the batch on the
// shelf, or nil.
func (r *Router) topUpAhead(c *container, b *aheadBatch, family, want int) *aheadBatch {
	if c.removed.Load() {
		return nil
	}
	if b == nil || !c.pool.unshelve(b) {
		b = &aheadBatch{}
	}
	now := time.Now()
	if need := want - len(b.fds); need > 0 {
		if granted := c.pool.reserveAhead(need, now); granted > 0 {
			fds, cookies, err := r.newPoolSockets(c, granted, family)
			c.pool.settle(granted, len(fds))
			if err != nil {
				r.log.Debug("making pool sockets ahead", "container", c.Name, "err", err)
			}
			b.fds, b.cookies = append(b.fds, fds...), append(b.cookies, cookies...)
		}
	}
	b.made = now
	if len(b.fds) == 0 || !c.pool.shelve(b) {
		return nil
	}
	return b
}

// end closes the connection's batches: it is gone.
func (p *poolAhead) end(c *container) {
	for i := range p.families {
		if b := p.families[i].batch; b != nil && c.pool.unshelve(b) {
			c.pool.discard(b)
		}
		p.families[i].batch = nil
	}
}

// closeAhead closes the sockets made ahead for every container, and any
// made from now on: the router stops (secure mode then counts the host
// sockets still open).
func (r *Router) closeAhead() {
	for _, c := range r.containers.list() {
		c.pool.closeAhead()
	}
}
