package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

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
		err := r.pushSession(ctx, addr)
		if ctx.Err() != nil {
			return
		}
		r.log.Debug("peer router unreachable; retrying", "peer", addr, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (r *Router) pushSession(ctx context.Context, addr string) error {
	dialer := net.Dialer{Timeout: dialTimeout, LocalAddr: &net.TCPAddr{IP: r.self.Underlay.AsSlice()}}
	conn, err := dialer.DialContext(ctx, "tcp4", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		mappings, changed := r.listeners.localMappings()
		payload, err := protocol.EncodeDirectory(mappings)
		if err != nil {
			return err
		}
		conn.SetWriteDeadline(time.Now().Add(peerIdle))
		msg := protocol.Message{Type: protocol.TypeDirectory, Payload: payload}
		if _, err := conn.Write(msg.Encode()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(resyncInterval):
		}
	}
}

// servePeers accepts directory pushes from the configured peer routers.
func (r *Router) servePeers() {
	for {
		conn, err := r.peerSocket.AcceptTCP()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.log.Error("accepting peer router", "err", err)
			}
			return
		}
		go r.servePeer(conn)
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
	for {
		conn.SetReadDeadline(time.Now().Add(peerIdle))
		mappings, err := readDirectory(conn)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				r.log.Warn("dropping peer router connection", "peer", from, "err", err)
			}
			return
		}
		if err := checkPeerMappings(peer, mappings); err != nil {
			r.log.Warn("refusing directory", "peer", from, "err", err)
			return
		}
		r.listeners.setRemote(from, mappings)
		r.publish()
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

// readDirectory reads one frame from a peer and decodes its mappings.
func readDirectory(conn net.Conn) ([]protocol.Mapping, error) {
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
	msg, err := protocol.DecodeFrame(frame)
	if err != nil {
		return nil, err
	}
	if msg.Type != protocol.TypeDirectory {
		return nil, fmt.Errorf("unexpected %v from a peer router", msg.Type)
	}
	return protocol.DecodeDirectory(msg.Payload)
}

// checkPeerMappings refuses mappings a peer has no business announcing:
// overlay addresses outside its subnet or host listeners not on its address.
func checkPeerMappings(peer overlay.HostPlan, mappings []protocol.Mapping) error {
	for _, m := range mappings {
		if !peer.Subnet.Contains(m.Overlay.Addr()) || m.Host.Addr() != peer.Underlay {
			return fmt.Errorf("mapping %s → %s is not within peer %s (%s)", m.Overlay, m.Host, peer.Underlay, peer.Subnet)
		}
	}
	return nil
}
