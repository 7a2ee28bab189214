package peers

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/secure"
)

func testKey(t *testing.T, fill byte) *secure.ClusterKey {
	t.Helper()
	k, err := secure.NewClusterKey(bytes.Repeat([]byte{fill}, secure.MinKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// loopbackPair returns the two ends of a TCP connection on 127.0.0.1: the
// pusher's (dialed) and the acceptor's.
func loopbackPair(t *testing.T) (pusher, acceptor *net.TCPConn) {
	t.Helper()
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	pusher, err = net.DialTCP("tcp4", nil, l.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	if acceptor, err = l.AcceptTCP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pusher.Close(); acceptor.Close() })
	for _, c := range []net.Conn{pusher, acceptor} {
		c.SetDeadline(time.Now().Add(5 * time.Second)) // no test hangs
	}
	return pusher, acceptor
}

// peerConns starts both sides of the peer channel with the given keys.
func peerConns(t *testing.T, pushKey, acceptKey *secure.ClusterKey) (pusher, acceptor *peerConn) {
	t.Helper()
	p, a := loopbackPair(t)
	acceptor, err := acceptPeerConn(a, acceptKey)
	if err != nil {
		t.Fatal(err)
	}
	if pusher, err = dialPeerConn(p, pushKey, time.Second); err != nil {
		t.Fatal(err)
	}
	return pusher, acceptor
}

func directoryMsg(version uint64) protocol.Message {
	m := protocol.Mapping{Overlay: netip.MustParseAddrPort("10.1.0.5:80"), Host: netip.MustParseAddrPort("192.168.1.1:40000")}
	payload, _ := protocol.EncodeDirectory(version, []protocol.Mapping{m})
	return protocol.Message{Type: protocol.TypeDirectory, Payload: payload}
}

func ackMsg(version uint64) protocol.Message {
	return protocol.Message{Type: protocol.TypeDirectoryAck, Payload: protocol.EncodeDirectoryAck(version)}
}

// exchange sends a few directories and acks each way and checks they
// arrive intact.
func exchange(t *testing.T, pusher, acceptor *peerConn) {
	t.Helper()
	for v := uint64(1); v <= 3; v++ {
		if err := pusher.write(directoryMsg(v)); err != nil {
			t.Fatal(err)
		}
		version, mappings, err := readDirectory(acceptor)
		if err != nil || version != v || len(mappings) != 1 {
			t.Fatalf("acceptor read version %d, %v, %v; want version %d", version, mappings, err, v)
		}
		if err := acceptor.write(ackMsg(v)); err != nil {
			t.Fatal(err)
		}
		msg, err := pusher.read()
		if err != nil || msg.Type != protocol.TypeDirectoryAck {
			t.Fatalf("pusher read %v, %v; want DIRECTORY_ACK", msg, err)
		}
	}
}

func TestPeerConnSameKey(t *testing.T) {
	key := testKey(t, 1)
	pusher, acceptor := peerConns(t, key, key)
	exchange(t, pusher, acceptor)
}

func TestPeerConnWithoutKeyKeepsBareFrames(t *testing.T) {
	pusher, acceptor := peerConns(t, nil, nil)
	exchange(t, pusher, acceptor)
	msg := directoryMsg(7)
	if err := pusher.write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg.Encode()))
	if _, err := io.ReadFull(acceptor.conn, got); err != nil || !bytes.Equal(got, msg.Encode()) {
		t.Fatalf("wire bytes % x, %v; want the bare frame % x", got, err, msg.Encode())
	}
}

// sealed is msg as a pusher with key would send it as its seq-th message
// of the session with the given nonce, in direction dir.
func sealed(key *secure.ClusterKey, nonce [nonceSize]byte, dir byte, seq uint64, msg protocol.Message) []byte {
	c := &peerConn{key: key.PeerKey(), nonce: nonce}
	frame := msg.Encode()
	return append(frame, c.tag(dir, seq, frame)...)
}

func flip(b []byte, at int) []byte {
	b = bytes.Clone(b)
	b[at] ^= 0x01
	return b
}

func TestPeerConnRejects(t *testing.T) {
	key := testKey(t, 1)
	seal := func(nonce [nonceSize]byte, dir byte, seq uint64, k *secure.ClusterKey) []byte {
		return sealed(k, nonce, dir, seq, directoryMsg(seq+1))
	}
	frameLen := len(directoryMsg(1).Encode())
	tests := []struct {
		name   string
		frames func(nonce [nonceSize]byte) [][]byte
		good   int // how many frames are accepted before the failure
	}{
		{"wrong key", func(n [nonceSize]byte) [][]byte { return [][]byte{seal(n, fromPusher, 0, testKey(t, 2))} }, 0},
		{"flipped header byte", func(n [nonceSize]byte) [][]byte { return [][]byte{flip(seal(n, fromPusher, 0, key), 8)} }, 0},
		{"flipped payload byte", func(n [nonceSize]byte) [][]byte { return [][]byte{flip(seal(n, fromPusher, 0, key), frameLen-1)} }, 0},
		{"flipped tag byte", func(n [nonceSize]byte) [][]byte { return [][]byte{flip(seal(n, fromPusher, 0, key), frameLen+3)} }, 0},
		{"replayed", func(n [nonceSize]byte) [][]byte {
			m := seal(n, fromPusher, 0, key)
			return [][]byte{m, m}
		}, 1},
		{"reordered", func(n [nonceSize]byte) [][]byte {
			return [][]byte{seal(n, fromPusher, 1, key), seal(n, fromPusher, 0, key)}
		}, 0},
		{"reflected", func(n [nonceSize]byte) [][]byte { return [][]byte{seal(n, fromAcceptor, 0, key)} }, 0},
		{"from another session", func(n [nonceSize]byte) [][]byte {
			n[0]++
			return [][]byte{seal(n, fromPusher, 0, key)}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pusher, acceptor := peerConns(t, key, key)
			for _, f := range tt.frames(pusher.nonce) {
				if _, err := pusher.conn.Write(f); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < tt.good; i++ {
				if _, err := acceptor.read(); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			msg, err := acceptor.read()
			if !isPeerAuthError(err) || msg.Payload != nil {
				t.Fatalf("read %v, %v; want an authentication failure and no message", msg, err)
			}
		})
	}
}

func TestPeerConnKeyOnOneSideOnly(t *testing.T) {
	key := testKey(t, 1)
	p, a := loopbackPair(t)
	if _, err := acceptPeerConn(a, nil); err != nil {
		t.Fatal(err)
	}
	_, err := dialPeerConn(p, key, 50*time.Millisecond)
	if !isPeerAuthError(err) || !strings.Contains(err.Error(), "no session nonce") {
		t.Errorf("keyed pusher, keyless acceptor: %v; want no session nonce", err)
	}

	pusher, acceptor := peerConns(t, nil, key)
	pusher.write(directoryMsg(1))
	pusher.write(directoryMsg(2))
	if _, _, err := readDirectory(acceptor); !isPeerAuthError(err) {
		t.Errorf("keyless pusher, keyed acceptor: %v; want an authentication failure", err)
	}
}
