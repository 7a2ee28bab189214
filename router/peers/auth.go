package peers

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/secure"
)

// Authentication of the peer channel (docs/protocol.md §5). With a cluster
// key the accepting router sends a fresh nonce, and every frame in either
// direction is followed by a tag: HMAC-SHA256 under the peer key of the
// nonce, the direction, the frame's sequence number and the frame.
const (
	nonceSize = 16
	tagSize   = sha256.Size
	// peerHandshakeTimeout bounds the wait for the nonce, so that a router
	// with a key facing one without fails instead of hanging.
	peerHandshakeTimeout = 5 * time.Second
)

// Directions of the peer channel, bound into every tag so that a message
// cannot be reflected back to its sender.
const (
	fromPusher   byte = 'P'
	fromAcceptor byte = 'A'
)

// peerConn reads and writes the frames of one peer-channel connection,
// tagged and checked if it has a key, bare otherwise. One goroutine may
// read while another writes.
type peerConn struct {
	conn             net.Conn
	key              []byte // the cluster's peer key; nil: no authentication
	nonce            [nonceSize]byte
	sendDir, recvDir byte
	sendSeq, recvSeq uint64
}

// peerAuthError says a peer router failed authentication.
type peerAuthError struct {
	Peer   net.Addr
	Reason string
}

func (e *peerAuthError) Error() string {
	return fmt.Sprintf("peer router %v failed authentication: %s", e.Peer, e.Reason)
}

// isPeerAuthError reports whether err is a failed authentication.
func isPeerAuthError(err error) bool {
	var authErr *peerAuthError
	return errors.As(err, &authErr)
}

// acceptPeerConn starts the accepting side of a connection; with a key it
// sends a fresh nonce (within the connection's write deadline).
func acceptPeerConn(conn net.Conn, key *secure.ClusterKey) (*peerConn, error) {
	c := &peerConn{conn: conn, sendDir: fromAcceptor, recvDir: fromPusher}
	if key == nil {
		return c, nil
	}
	c.key = key.PeerKey()
	rand.Read(c.nonce[:]) // never fails since Go 1.24
	if _, err := conn.Write(c.nonce[:]); err != nil {
		return nil, err
	}
	return c, nil
}

// dialPeerConn starts the pushing side of a connection; with a key it
// reads the acceptor's nonce, waiting at most timeout.
func dialPeerConn(conn net.Conn, key *secure.ClusterKey, timeout time.Duration) (*peerConn, error) {
	c := &peerConn{conn: conn, sendDir: fromPusher, recvDir: fromAcceptor}
	if key == nil {
		return c, nil
	}
	c.key = key.PeerKey()
	conn.SetReadDeadline(time.Now().Add(timeout))
	defer conn.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(conn, c.nonce[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = &peerAuthError{Peer: conn.RemoteAddr(),
				Reason: fmt.Sprintf("sent no session nonce within %v (has it no cluster key?)", timeout)}
		}
		return nil, err
	}
	return c, nil
}

// write sends one message, followed by its tag if c has a key.
func (c *peerConn) write(msg protocol.Message) error {
	frame := msg.Encode()
	if c.key != nil {
		frame = append(frame, c.tag(c.sendDir, c.sendSeq, frame)...)
		c.sendSeq++
	}
	_, err := c.conn.Write(frame)
	return err
}

// read receives one message. If c has a key, the message's tag is checked
// before anything in it but its length is looked at.
func (c *peerConn) read() (protocol.Message, error) {
	frame, err := readFrame(c.conn)
	if err != nil {
		return protocol.Message{}, err
	}
	if c.key != nil {
		if err := c.verify(frame); err != nil {
			return protocol.Message{}, err
		}
	}
	return protocol.DecodeFrame(frame)
}

// verify reads the tag that follows frame and checks it.
func (c *peerConn) verify(frame []byte) error {
	got := make([]byte, tagSize)
	if _, err := io.ReadFull(c.conn, got); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // a frame without its tag
		}
		return err
	}
	if !hmac.Equal(got, c.tag(c.recvDir, c.recvSeq, frame)) {
		return &peerAuthError{Peer: c.conn.RemoteAddr(), Reason: fmt.Sprintf(
			"message %d has a wrong tag (a different cluster key, or a tampered, replayed or reordered message)", c.recvSeq)}
	}
	c.recvSeq++
	return nil
}

// tag is HMAC-SHA256(key, nonce || dir || seq (u64 big-endian) || frame).
func (c *peerConn) tag(dir byte, seq uint64, frame []byte) []byte {
	mac := hmac.New(sha256.New, c.key)
	mac.Write(c.nonce[:])
	mac.Write([]byte{dir})
	mac.Write(binary.BigEndian.AppendUint64(nil, seq))
	mac.Write(frame)
	return mac.Sum(nil)
}
