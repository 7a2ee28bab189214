package supervise

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// Pool sizes: a refill asks for poolBatch sockets, in the background once
// fewer than poolLow are left, so that a connect seldom waits for one.
const (
	poolBatch = 32
	poolLow   = 8
)

// poolPause is how long the pool leaves a failing router alone.
const poolPause = time.Second

// pool keeps unconnected host sockets of one family from the router.
type pool struct {
	mu        sync.Mutex
	router    *router
	family    protocol.PoolFamily
	refused   bool // the router said it makes no sockets of the family (EAFNOSUPPORT)
	socks     []int
	refilling bool
	failUntil time.Time
	log       func(format string, args ...any)
}

// get takes a host socket, or returns -1 when none can be had (the router
// is unreachable or refuses: the connect uses the overlay).
func (p *pool) get() int {
	p.mu.Lock()
	if len(p.socks) == 0 {
		p.mu.Unlock()
		p.refill()
		p.mu.Lock()
	}
	fd := -1
	if n := len(p.socks); n > 0 {
		fd = p.socks[n-1]
		p.socks = p.socks[:n-1]
	}
	if len(p.socks) < poolLow && !p.refilling && time.Now().After(p.failUntil) {
		p.refilling = true
		go func() {
			p.refill()
			p.mu.Lock()
			p.refilling = false
			p.mu.Unlock()
		}()
	}
	p.mu.Unlock()
	return fd
}

// refill asks the router for a batch, unless it failed a moment ago.
func (p *pool) refill() {
	p.mu.Lock()
	paused := time.Now().Before(p.failUntil)
	p.mu.Unlock()
	if paused {
		return
	}
	fds, err := p.router.poolSockets(poolBatch, p.family)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused = refusedInet6(err)
	if err != nil {
		p.failUntil = time.Now().Add(poolPause)
		p.log("no host sockets from the router (%v): connects use the overlay for %v", err, poolPause)
		return
	}
	p.socks = append(p.socks, fds...)
}

// refusedFamily says whether the router's last answer was that it makes
// no host sockets of the pool's family.
func (p *pool) refusedFamily() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, fd := range p.socks {
		unix.Close(fd)
	}
	p.socks = nil
}
