package peers

import (
	"net/netip"
	"sync"
	"time"
)

// peerHealth is what this router knows of each peer router's liveness.
type peerHealth struct {
	mu      sync.Mutex
	peers   map[netip.Addr]*peerState
	ackSeen chan struct{} // closed and replaced whenever an ack arrives
}

type peerState struct {
	connected     bool      // our push connection to it is up
	unreachable   bool      // our last attempt to connect failed
	lastDirectory time.Time // it last sent us its directory
	acked         uint64    // the last version of our directory it published
}

func newPeerHealth() *peerHealth {
	return &peerHealth{peers: map[netip.Addr]*peerState{}, ackSeen: make(chan struct{})}
}

// acknowledged records that a peer published a version of our directory.
func (h *peerHealth) acknowledged(peer netip.Addr, version uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.state(peer); version > s.acked {
		s.acked = version
	}
	close(h.ackSeen)
	h.ackSeen = make(chan struct{})
}

// expect registers the configured peers, so that they are waited for
// before their first connection is up.
func (h *peerHealth) expect(peers []netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range peers {
		h.state(p)
	}
}

// setUnreachable records whether the last attempt to reach a peer failed.
func (h *peerHealth) setUnreachable(peer netip.Addr, failed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state(peer).unreachable = failed
	close(h.ackSeen) // waiters stop counting a peer that is down
	h.ackSeen = make(chan struct{})
}

// pendingAcks counts the peers, but those known to be unreachable, that
// have not acknowledged the version yet, and returns a channel closed at
// the next ack or change of reachability.
func (h *peerHealth) pendingAcks(version uint64) (int, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	pending := 0
	for _, s := range h.peers {
		if !s.unreachable && s.acked < version {
			pending++
		}
	}
	return pending, h.ackSeen
}

func (h *peerHealth) state(peer netip.Addr) *peerState {
	s, ok := h.peers[peer]
	if !ok {
		s = &peerState{}
		h.peers[peer] = s
	}
	return s
}

func (h *peerHealth) setConnected(peer netip.Addr, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state(peer).connected = up
}

func (h *peerHealth) directoryReceived(peer netip.Addr, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state(peer).lastDirectory = at
}

func (h *peerHealth) get(peer netip.Addr) peerState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return *h.state(peer)
}
