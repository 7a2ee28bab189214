package peers

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/protocol"
)

// peerFeatures is the ID this router puts in every frame it sends a peer:
// the features of the peer channel it understands (docs/protocol.md §5).
const peerFeatures = protocol.PeerFeatureClients | protocol.PeerFeatureFamilies

// acceptorFeatures is what a pusher learned of its acceptor's features
// from the frames it sent back.
type acceptorFeatures struct {
	clients  atomic.Bool
	families atomic.Bool // it takes DIRECTORY flags (PeerFeatureFamilies)
	once     sync.Once
	learned  chan struct{} // closed when clients is set
	famOnce  sync.Once
	famLearn chan struct{} // closed when families is set
}

func newAcceptorFeatures() *acceptorFeatures {
	return &acceptorFeatures{learned: make(chan struct{}), famLearn: make(chan struct{})}
}

// saw records the features of a frame from the acceptor.
func (f *acceptorFeatures) saw(msg protocol.Message) {
	if msg.ID&protocol.PeerFeatureFamilies != 0 {
		f.famOnce.Do(func() {
			f.families.Store(true)
			close(f.famLearn)
		})
	}
	if msg.ID&protocol.PeerFeatureClients != 0 {
		f.once.Do(func() {
			f.clients.Store(true)
			close(f.learned)
		})
	}
}

// clientsPush is the CLIENTS side of one push connection.
type clientsPush struct {
	peer     netip.Addr
	features *acceptorFeatures
	sent     bool // a list went on this connection
	last     []protocol.Mapping
	warned   bool // that the list was cut
}

// pushClients sends the peer this host's client connections to it if the
// list changed since the last one sent on this connection (or none was),
// and if the peer understands CLIENTS. It returns a channel closed when
// there may be more to send.
func (e *Exchange) pushClients(pc *peerConn, s *clientsPush) (<-chan struct{}, error) {
	if !s.features.clients.Load() {
		return s.features.learned, nil
	}
	list, omitted, changed := e.config.Clients.ClientsFor(s.peer, e.config.Self.Underlay)
	if omitted > 0 && !s.warned {
		e.config.Log.Warn("too many client connections to list for a peer; it shows the rest by host address",
			"peer", s.peer, "listed", len(list), "left_out", omitted)
		s.warned = true
	}
	if s.sent && slices.Equal(list, s.last) {
		return changed, nil
	}
	payloads, err := protocol.EncodeClients(list)
	if err != nil {
		return nil, err
	}
	for _, p := range payloads {
		pc.conn.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
		if err := pc.write(protocol.Message{Type: protocol.TypeClients, ID: peerFeatures, Payload: p}); err != nil {
			return nil, err
		}
	}
	s.sent, s.last = true, list
	return changed, nil
}

// clientsReceiver takes the CLIENTS lists of one accepted peer connection.
type clientsReceiver struct {
	census  Clients
	peer    overlay.HostPlan
	session uint64
	parts   []protocol.Mapping // of a list that goes on in the next message
	stored  bool               // a list from this connection is in the census
}

// newClientsReceiver numbers the connection, so that the end of an old
// one does not drop what a newer one brought.
func (e *Exchange) newClientsReceiver(peer overlay.HostPlan) *clientsReceiver {
	return &clientsReceiver{census: e.config.Clients, peer: peer, session: e.sessions.Add(1)}
}

// receive takes a message other than DIRECTORY from the peer: a part of a
// CLIENTS list, applied when the list is whole. A list that is malformed,
// too long or names addresses outside the peer's subnet or host is an
// error, and so is any other type.
func (c *clientsReceiver) receive(msg protocol.Message) error {
	if msg.Type != protocol.TypeClients {
		return fmt.Errorf("unexpected %v from a peer router", msg.Type)
	}
	part, more, err := protocol.DecodeClients(msg.Payload)
	if err != nil {
		return err
	}
	if len(c.parts)+len(part) > protocol.MaxClients {
		return fmt.Errorf("%w: CLIENTS list longer than %d", protocol.ErrMalformed, protocol.MaxClients)
	}
	c.parts = append(c.parts, part...)
	if more {
		return nil
	}
	list := c.parts
	c.parts = nil
	if err := checkPeerMappings(c.peer, list); err != nil {
		return fmt.Errorf("refusing CLIENTS: %w", err)
	}
	c.census.SetRemoteClients(c.peer.Underlay, c.session, list)
	c.stored = true
	return nil
}

// end forgets the list this connection brought: without its connection
// the peer cannot say when the list changes.
func (c *clientsReceiver) end() {
	if c.stored {
		c.census.DropRemoteClients(c.peer.Underlay, c.session)
	}
}
