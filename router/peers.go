package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/slimnet/slim/internal/acceptloop"
	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/protocol"
)

// Timing of the directory exchange between routers.
const (
	resyncInterval = 5 * time.Second  // a full snapshot even without changes
	peerIdle       = 30 * time.Second // drop a peer connection silent for this long
	dialTimeout    = time.Second
	maxBackoff     = 2 * time.Second
)

// pushTo keeps a connection to one peer router and sends it this host's
// listeners whenever they change, and every resyncInterval.
func (r *Router) pushTo(ctx context.Context, peer overlay.HostPlan) {
	addr := netip.AddrPortFrom(peer.Underlay, r.config.PeerPort).String()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		wasUp, err := r.pushSession(ctx, peer.Underlay, addr)
		if ctx.Err() != nil {
			return
		}
		r.peerHealth.setUnreachable(peer.Underlay, true)
		switch {
		case isPeerAuthError(err):
			r.log.Warn("peer router failed authentication; retrying", "peer", addr, "err", err, "in", backoff)
		case wasUp:
			r.log.Warn("lost the connection to a peer router; reconnecting", "peer", addr, "err", err)
			backoff = 100 * time.Millisecond
		default:
			r.log.Debug("peer router unreachable; retrying", "peer", addr, "err", err, "in", backoff)
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
// whether it got as far as the peer channel being up.
func (r *Router) pushSession(ctx context.Context, peer netip.Addr, addr string) (up bool, err error) {
	conn, err := peerDialer(r.self.Underlay.AsSlice()).DialContext(ctx, "tcp4", addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	pc, err := dialPeerConn(conn, r.clusterKey, peerHandshakeTimeout)
	if err != nil {
		return false, err
	}
	r.peerHealth.setConnected(peer, true)
	r.peerHealth.setUnreachable(peer, false)
	defer r.peerHealth.setConnected(peer, false)
	features := newAcceptorFeatures()
	acksEnded := make(chan error, 1)
	go func() { acksEnded <- r.readAcks(pc, peer, features) }()
	return true, r.pushLoop(ctx, pc, peer, features, acksEnded)
}

// pushLoop sends the directory on every change and every resyncInterval,
// and the CLIENTS lists, until the connection fails or the acceptor goes
// silent (acksEnded).
func (r *Router) pushLoop(ctx context.Context, pc *peerConn, peer netip.Addr, features *acceptorFeatures, acksEnded <-chan error) error {
	clients := &clientsPush{peer: peer, features: features}
	resync := time.NewTimer(resyncInterval)
	defer resync.Stop()
	var sentVersion uint64
	first, resyncDue := true, false
	for {
		mappings, version, changed := r.listeners.localMappings()
		if first || resyncDue || version != sentVersion {
			payload, err := protocol.EncodeDirectory(version, mappings)
			if err != nil {
				return err
			}
			pc.conn.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
			msg := protocol.Message{Type: protocol.TypeDirectory, ID: peerFeatures, Payload: payload}
			if err := pc.write(msg); err != nil {
				return err
			}
			sentVersion, first, resyncDue = version, false, false
			resync.Reset(resyncInterval)
		}
		// The client ends of this host's connections to the peer, when
		// the sweep changed them (census_peers.go).
		more, err := r.pushClients(pc, clients)
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
		}
	}
}

// servePeers accepts directory pushes from the configured peer routers
// until the socket is closed; a failed accept (EMFILE) pauses the loop,
// never ends it.
func (r *Router) servePeers() {
	acceptloop.Run("peer router", r.log, r.peerSocket.AcceptTCP, func(conn *net.TCPConn) {
		go r.servePeer(conn)
	})
}

// readAcks records the directory versions a peer acknowledges, and the
// features its frames announce, until the push connection fails, and
// returns why. An acknowledgement that fails authentication ends it, and
// so does silence for peerAckSilence (the acceptor acknowledges every
// DIRECTORY, and one goes at least every resyncInterval); a frame of a
// type this router does not know is skipped.
func (r *Router) readAcks(pc *peerConn, peer netip.Addr, features *acceptorFeatures) error {
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
			r.peerHealth.acknowledged(peer, version)
		}
	}
}

func (r *Router) servePeer(conn *net.TCPConn) {
	defer conn.Close()
	from := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	peer, ok := r.peerByUnderlay(from)
	if !ok {
		r.log.Warn("refusing directory from an unknown host", "from", from)
		return
	}
	if err := configureAcceptedPeer(conn); err != nil {
		r.log.Warn("dropping peer router connection", "peer", from, "err", err)
		return
	}
	conn.SetWriteDeadline(time.Now().Add(peerWriteTimeout))
	pc, err := acceptPeerConn(conn, r.clusterKey)
	if err != nil {
		r.logPeerEnd(from, err)
		return
	}
	clients := r.newClientsReceiver(peer)
	defer clients.end()
	for {
		conn.SetReadDeadline(time.Now().Add(peerIdle))
		version, mappings, err := readDirectoryWith(pc, clients.receive)
		if err != nil {
			r.logPeerEnd(from, err)
			return
		}
		if err := checkPeerDirectory(peer, mappings); err != nil {
			r.log.Warn("refusing directory", "peer", from, "err", err)
			return
		}
		r.listeners.setRemote(from, mappings)
		r.peerHealth.directoryReceived(from, time.Now())
		r.publish()
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
func (r *Router) logPeerEnd(peer netip.Addr, err error) {
	switch {
	case isPeerAuthError(err):
		r.log.Warn("peer router failed authentication; dropping the connection", "peer", peer, "err", err)
	case !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
		r.log.Warn("dropping peer router connection", "peer", peer, "err", err)
	}
}

func (r *Router) peerByUnderlay(addr netip.Addr) (overlay.HostPlan, bool) {
	for _, p := range r.plan.Peers(r.config.Self) {
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
			return protocol.DecodeDirectory(msg.Payload)
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

// waitForPeers waits until every connected peer has acknowledged the
// directory version, or peerAckTimeout passes.
func (r *Router) waitForPeers(version uint64) {
	deadline := time.After(peerAckTimeout)
	for {
		pending, changed := r.peerHealth.pendingAcks(version)
		if pending == 0 {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			r.log.Debug("peers slow to acknowledge the directory", "version", version, "pending", pending)
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
// listeners also need a port on both sides.
func checkPeerDirectory(peer overlay.HostPlan, mappings []protocol.Mapping) error {
	for _, m := range mappings {
		if m.Overlay.Port() == 0 || m.Host.Port() == 0 {
			return fmt.Errorf("listener %s → %s of peer %s: port 0", m.Overlay, m.Host, peer.Underlay)
		}
	}
	return checkPeerMappings(peer, mappings)
}
