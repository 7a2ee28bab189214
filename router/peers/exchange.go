package peers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/internal/acceptloop"
	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/secure"
)

// Timing of the directory exchange between routers.
const (
	resyncInterval = 5 * time.Second  // a full snapshot even without changes
	peerIdle       = 30 * time.Second // drop a peer connection silent for this long
	dialTimeout    = time.Second
	maxBackoff     = 2 * time.Second
)

// Directory is this host's side of the exchange: what it announces, and
// where what its peers announce goes.
type Directory interface {
	// LocalMappings is this host's listeners, one mapping per overlay
	// address, with the version they belong to and a channel closed at
	// the next change.
	LocalMappings() (mappings []protocol.Mapping, version uint64, changed <-chan struct{})
	// SetRemote makes mappings the listeners of the peer at underlay
	// address peer. When it returns, this host's shims can find them (the
	// peer is then told so).
	SetRemote(peer netip.Addr, mappings []protocol.Mapping)
}

// Clients is the census's side of the CLIENTS lists (clients.go).
type Clients interface {
	// ClientsFor is the list to send the peer at host address peer: this
	// host's client connections to it from host address self, at most
	// protocol.MaxClients, with the number left out and a channel closed
	// at the next change.
	ClientsFor(peer, self netip.Addr) (list []protocol.Mapping, omitted int, changed <-chan struct{})
	// SetRemoteClients replaces the list of a peer, sent on the
	// connection numbered session; DropRemoteClients forgets it when
	// that connection ends, unless a newer one replaced it.
	SetRemoteClients(peer netip.Addr, session uint64, list []protocol.Mapping)
	DropRemoteClients(peer netip.Addr, session uint64)
}

// Config says with whom and how a router exchanges its directory.
type Config struct {
	Self  overlay.HostPlan   // this host
	Peers []overlay.HostPlan // every other host of the cluster
	Port  uint16             // the peer port, on every host's underlay address
	// Key authenticates the channel (docs/protocol.md §5); nil: no
	// authentication (insecure_peers).
	Key *secure.ClusterKey
	// Listener is where peers push (nil: nowhere); Run closes it.
	Listener  *net.TCPListener
	Directory Directory
	Clients   Clients
	Log       *slog.Logger
}

// Exchange keeps this router's directory exchange with every peer: a push
// connection to each (its listeners, on every change and every
// resyncInterval, then CLIENTS), and the connections peers push on.
type Exchange struct {
	config   Config
	health   *peerHealth
	sessions atomic.Uint64 // numbers accepted connections (clients.go)

	// The connections peers pushed on, so that the stop reaches them.
	mu      sync.Mutex
	closing bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// New returns the exchange of a router; nothing runs until Run.
func New(config Config) *Exchange {
	e := &Exchange{config: config, health: newPeerHealth(), conns: map[net.Conn]struct{}{}}
	for _, p := range config.Peers {
		e.health.expect([]netip.Addr{p.Underlay})
	}
	return e
}

// Run serves the peers that push on the listener and pushes to every
// peer, until ctx is done. It closes the listener, then every connection,
// and returns once every goroutine it started is done.
func (e *Exchange) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if l := e.config.Listener; l != nil {
		wg.Add(1)
		go func() { defer wg.Done(); e.serve(ctx, l) }()
	}
	for _, peer := range e.config.Peers {
		wg.Add(1)
		go func() { defer wg.Done(); e.pushTo(ctx, peer) }()
	}
	wg.Wait()
	return nil
}

// Peers lists the peers, as the control API shows them (the number of
// listeners of each is the directory's business).
func (e *Exchange) Peers() []control.Peer {
	var list []control.Peer
	for _, p := range e.config.Peers {
		st := e.health.get(p.Underlay)
		list = append(list, control.Peer{Host: p.Underlay, Subnet: p.Subnet, Connected: st.connected, LastDirectory: st.lastDirectory})
	}
	return list
}

// pushTo keeps a connection to one peer router and sends it this host's
// listeners whenever they change, and every resyncInterval.
func (e *Exchange) pushTo(ctx context.Context, peer overlay.HostPlan) {
	addr := netip.AddrPortFrom(peer.Underlay, e.config.Port).String()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wasUp, err := e.pushSession(ctx, peer.Underlay, addr)
		if ctx.Err() != nil {
			return
		}
		e.health.setUnreachable(peer.Underlay, true)
		switch {
		case isPeerAuthError(err):
			e.config.Log.Warn("peer router failed authentication; retrying", "peer", addr, "err", err, "in", backoff)
		case wasUp:
			e.config.Log.Warn("lost the connection to a peer router; reconnecting", "peer", addr, "err", err)
			backoff = 100 * time.Millisecond
		default:
			e.config.Log.Debug("peer router unreachable; retrying", "peer", addr, "err", err, "in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// pushSession runs one push connection to a peer until it fails; up says
// whether it got as far as the peer channel being up. It returns once
// its acknowledgement reader is done too.
func (e *Exchange) pushSession(ctx context.Context, peer netip.Addr, addr string) (up bool, err error) {
	conn, err := peerDialer(e.config.Self.Underlay.AsSlice()).DialContext(ctx, "tcp4", addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	pc, err := dialPeerConn(conn, e.config.Key, peerHandshakeTimeout)
	if err != nil {
		return false, err
	}
	e.health.setConnected(peer, true)
	e.health.setUnreachable(peer, false)
	defer e.health.setConnected(peer, false)
	features := newAcceptorFeatures()
	acksEnded := make(chan error, 1)
	acksDone := make(chan struct{})
	go func() {
		defer close(acksDone)
		acksEnded <- e.readAcks(pc, peer, features)
	}()
	err = e.pushLoop(ctx, pc, peer, features, acksEnded)
	conn.Close() // ends readAcks
	<-acksDone
	return true, err
}

// pushLoop sends the directory on every change and every resyncInterval,
// and the CLIENTS lists, until the connection fails or the acceptor goes
// silent (acksEnded).
func (e *Exchange) pushLoop(ctx context.Context, pc *peerConn, peer netip.Addr, features *acceptorFeatures, acksEnded <-chan error) error {
	clients := &clientsPush{peer: peer, features: features}
	resync := time.NewTimer(resyncInterval)
	defer resync.Stop()
	var sentVersion uint64
	first, resyncDue, sentFamilies := true, false, false
	familiesLearned := (<-chan struct{})(features.famLearn)
	for {
		mappings, version, changed := e.config.Directory.LocalMappings()
		families := features.families.Load()
		if first || resyncDue || version != sentVersion || families != sentFamilies {
			payload, err := encodeDirectoryFor(version, mappings, families)
			if err != nil {
				return err
			}
			pc.conn.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
			msg := protocol.Message{Type: protocol.TypeDirectory, ID: directoryID(families), Payload: payload}
			if err := pc.write(msg); err != nil {
				return err
			}
			sentVersion, first, resyncDue, sentFamilies = version, false, false, families
			resync.Reset(resyncInterval)
		}
		// The client ends of this host's connections to the peer, when
		// the sweep changed them (clients.go).
		more, err := e.pushClients(pc, clients)
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-acksEnded:
			return err
		case <-changed:
		case <-resync.C:
			resyncDue = true
		case <-more:
		case <-familiesLearned: // the flags it can take now: again, with them
			familiesLearned = nil
		}
	}
}

// encodeDirectoryFor encodes a DIRECTORY for an acceptor that takes the
// mappings' flags (families) or not: then IPv6-only listeners are left out
// and the others go without flags (protocol.ForLegacyPeer).
func encodeDirectoryFor(version uint64, mappings []protocol.Mapping, families bool) ([]byte, error) {
	if families {
		return protocol.EncodeDirectoryFamilies(version, mappings)
	}
	return protocol.EncodeDirectory(version, protocol.ForLegacyPeer(mappings))
}

// directoryID is a DIRECTORY frame's ID: this router's features, but
// PeerFeatureFamilies only on one that carries the flags (it tells the
// acceptor how to read the payload).
func directoryID(families bool) uint32 {
	if families {
		return peerFeatures
	}
	return peerFeatures &^ protocol.PeerFeatureFamilies
}

// serve accepts directory pushes from the configured peer routers until
// ctx is done or l is closed; a failed accept (EMFILE) pauses the loop,
// never ends it. Then it closes l and every connection, and waits for
// them.
func (e *Exchange) serve(ctx context.Context, l *net.TCPListener) {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	acceptloop.Run("peer router", e.config.Log, l.AcceptTCP, func(conn *net.TCPConn) {
		if !e.track(conn) {
			conn.Close()
			return
		}
		go func() {
			defer e.untrack(conn)
			e.servePeer(conn)
		}()
	})
	l.Close()
	e.mu.Lock()
	e.closing = true
	for conn := range e.conns {
		conn.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
}

func (e *Exchange) track(conn net.Conn) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return false
	}
	e.conns[conn] = struct{}{}
	e.wg.Add(1)
	return true
}

func (e *Exchange) untrack(conn net.Conn) {
	e.mu.Lock()
	delete(e.conns, conn)
	e.mu.Unlock()
	e.wg.Done()
}

// readAcks records the directory versions a peer acknowledges, and the
// features its frames announce, until the push connection fails, and
// returns why. An acknowledgement that fails authentication ends it, and
// so does silence for peerAckSilence (the acceptor acknowledges every
// DIRECTORY, and one goes at least every resyncInterval); a frame of a
// type this router does not know is skipped.
func (e *Exchange) readAcks(pc *peerConn, peer netip.Addr, features *acceptorFeatures) error {
	for {
		pc.conn.SetReadDeadline(time.Now().Add(peerAckSilence))
		msg, err := pc.read()
		if protocol.IsUnknownType(err) {
			continue
		}
		if err != nil {
			return ackSilence(err)
		}
		features.saw(msg)
		if msg.Type != protocol.TypeDirectoryAck {
			continue
		}
		if version, err := protocol.DecodeDirectoryAck(msg.Payload); err == nil {
			e.health.acknowledged(peer, version)
		}
	}
}

// servePeer takes the directories a peer pushes on conn, until it fails.
func (e *Exchange) servePeer(conn *net.TCPConn) {
	defer conn.Close()
	from := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	peer, ok := e.peerByUnderlay(from)
	if !ok {
		e.config.Log.Warn("refusing directory from an unknown host", "from", from)
		return
	}
	if err := configureAcceptedPeer(conn); err != nil {
		e.config.Log.Warn("dropping peer router connection", "peer", from, "err", err)
		return
	}
	conn.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
	pc, err := acceptPeerConn(conn, e.config.Key)
	if err != nil {
		e.logPeerEnd(from, err)
		return
	}
	clients := e.newClientsReceiver(peer)
	defer clients.end()
	for {
		conn.SetReadDeadline(time.Now().Add(peerIdle))
		version, mappings, err := readDirectoryWith(pc, clients.receive)
		if err != nil {
			e.logPeerEnd(from, err)
			return
		}
		if err := checkPeerDirectory(peer, mappings); err != nil {
			e.config.Log.Warn("refusing directory", "peer", from, "err", err)
			return
		}
		e.config.Directory.SetRemote(from, mappings)
		e.health.directoryReceived(from, time.Now())
		// The shims here can now reach the peer's listeners: say so, so a
		// listen() on the peer can return knowing its clients will find it.
		ack := protocol.Message{Type: protocol.TypeDirectoryAck, ID: peerFeatures, Payload: protocol.EncodeDirectoryAck(version)}
		conn.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
		if err := pc.write(ack); err != nil {
			return
		}
	}
}

// logPeerEnd says why a connection from a peer router ended, unless the
// peer or this router simply closed it.
func (e *Exchange) logPeerEnd(peer netip.Addr, err error) {
	switch {
	case isPeerAuthError(err):
		e.config.Log.Warn("peer router failed authentication; dropping the connection", "peer", peer, "err", err)
	case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
		e.config.Log.Warn("dropping peer router connection", "peer", peer, "err", err)
	}
}

func (e *Exchange) peerByUnderlay(addr netip.Addr) (overlay.HostPlan, bool) {
	for _, p := range e.config.Peers {
		if p.Underlay == addr {
			return p, true
		}
	}
	return overlay.HostPlan{}, false
}

// readFrame reads the bytes of one frame from a peer router, looking at
// nothing but its header's magic and length.
func readFrame(conn net.Conn) ([]byte, error) {
	header := make([]byte, protocol.HeaderSize)
	if _, err := io.ReadFull(conn, header); err != nil {
		return nil, err
	}
	n, err := protocol.FrameLength(header)
	if err != nil {
		return nil, err
	}
	frame := make([]byte, protocol.HeaderSize+n)
	copy(frame, header)
	if _, err := io.ReadFull(conn, frame[protocol.HeaderSize:]); err != nil {
		return nil, err
	}
	return frame, nil
}

// readDirectory reads one DIRECTORY message from a peer.
func readDirectory(pc *peerConn) (uint64, []protocol.Mapping, error) {
	return readDirectoryWith(pc, nil)
}

// readDirectoryWith reads frames from a peer up to the next DIRECTORY
// message. It hands messages of other known types to other (nil: they are
// an error) and skips those of types this router does not know: their
// frames are whole, and authenticated if the channel is.
func readDirectoryWith(pc *peerConn, other func(protocol.Message) error) (uint64, []protocol.Mapping, error) {
	for {
		msg, err := pc.read()
		if protocol.IsUnknownType(err) {
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		if msg.Type == protocol.TypeDirectory {
			return protocol.DecodeDirectoryOf(msg.Payload, msg.ID)
		}
		if other == nil {
			return 0, nil, fmt.Errorf("unexpected %v from a peer router", msg.Type)
		}
		if err := other(msg); err != nil {
			return 0, nil, err
		}
	}
}

// peerAckTimeout bounds how long a LISTEN waits for the peers to publish
// the new listener; a peer that is slower (or down) learns it later.
const peerAckTimeout = 200 * time.Millisecond

// WaitPublished waits until every connected peer has acknowledged the
// directory version (its shims can find this host's listeners of that
// version), or peerAckTimeout passes.
func (e *Exchange) WaitPublished(version uint64) {
	deadline := time.After(peerAckTimeout)
	for {
		pending, changed := e.health.pendingAcks(version)
		if pending == 0 {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			e.config.Log.Debug("peers slow to acknowledge the directory", "version", version, "pending", pending)
			return
		}
	}
}

// checkPeerMappings refuses mappings a peer has no business announcing:
// overlay addresses outside its subnet or host addresses not its own
// underlay address (another host's).
func checkPeerMappings(peer overlay.HostPlan, mappings []protocol.Mapping) error {
	for _, m := range mappings {
		if !peer.Subnet.Contains(m.Overlay.Addr()) {
			return fmt.Errorf("mapping %s → %s: %s is not in peer %s's subnet %s", m.Overlay, m.Host, m.Overlay.Addr(), peer.Underlay, peer.Subnet)
		}
		if m.Host.Addr() != peer.Underlay {
			return fmt.Errorf("mapping %s → %s: the host address is not peer %s's own", m.Overlay, m.Host, peer.Underlay)
		}
	}
	return nil
}

// checkPeerDirectory is checkPeerMappings for a DIRECTORY, whose
// listeners also need an overlay port. Host port 0 is a pending listener
// (its app not yet seen accepting, docs/datapath.md): listed, never
// routed to, as the shims treat port 0 as no entry.
func checkPeerDirectory(peer overlay.HostPlan, mappings []protocol.Mapping) error {
	for _, m := range mappings {
		if m.Overlay.Port() == 0 {
			return fmt.Errorf("listener %s → %s of peer %s: overlay port 0", m.Overlay, m.Host, peer.Underlay)
		}
	}
	return checkPeerMappings(peer, mappings)
}
