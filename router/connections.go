package router

import (
	"net/netip"
	"sync"
	"time"

	"github.com/slimnet/slim/router/protocol"
)

// maxConnections bounds the connection table; beyond it new notes are
// dropped (the table serves views, not the data path).
const maxConnections = 1 << 17

// connection is an accelerated connection as a shim reported it.
type connection struct {
	Container string
	Role      protocol.Role
	Local     netip.AddrPort
	Peer      netip.AddrPort
	Since     time.Time
}

// connections is the table of accelerated connections by host socket cookie.
type connections struct {
	mu    sync.Mutex
	table map[uint64]connection
}

func newConnections() *connections { return &connections{table: map[uint64]connection{}} }

func (cs *connections) add(cookie uint64, c connection) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.table) < maxConnections {
		cs.table[cookie] = c
	}
}

func (cs *connections) lookup(cookie uint64) (connection, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c, ok := cs.table[cookie]
	return c, ok
}

// retain drops every connection whose cookie is not in alive.
func (cs *connections) retain(alive map[uint64]bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for cookie := range cs.table {
		if !alive[cookie] {
			delete(cs.table, cookie)
		}
	}
}

func (cs *connections) len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.table)
}
