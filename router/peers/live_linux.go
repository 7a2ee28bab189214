package peers

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Liveness of the peer channel (docs/protocol.md §5). A wire that drops
// everything must not leave a push connection "connected": the kernel
// gives up on a peer socket whose data, or keepalive probes, go
// unanswered for peerUserTimeout, and a pusher gives up on an acceptor
// that acknowledges no DIRECTORY for peerAckSilence (one comes at least
// every resyncInterval), such as a router that is stopped.
const (
	peerKeepAliveIdle     = time.Second
	peerKeepAliveInterval = time.Second
	peerKeepAliveCount    = 3
	peerUserTimeout       = 4 * time.Second
	peerAckSilence        = resyncInterval + 5*time.Second
	// peerWriteTimeout bounds one write on the peer channel.
	peerWriteTimeout = peerUserTimeout + time.Second
)

// errPeerSilent says a peer router acknowledged nothing for too long.
var errPeerSilent = fmt.Errorf("the peer router acknowledged no directory for %v", peerAckSilence)

// peerKeepAlive is the keepalive of every peer-channel socket.
var peerKeepAlive = net.KeepAliveConfig{
	Enable: true, Idle: peerKeepAliveIdle, Interval: peerKeepAliveInterval, Count: peerKeepAliveCount,
}

// peerDialer dials a peer router from this host's underlay address, with
// the peer channel's keepalive and user timeout set before the SYN.
func peerDialer(local net.IP) *net.Dialer {
	return &net.Dialer{
		Timeout:         dialTimeout,
		LocalAddr:       &net.TCPAddr{IP: local},
		KeepAliveConfig: peerKeepAlive,
		Control: func(_, _ string, raw syscall.RawConn) error {
			return setUserTimeout(raw)
		},
	}
}

// configureAcceptedPeer gives a connection from a peer router the peer
// channel's keepalive and user timeout.
func configureAcceptedPeer(conn *net.TCPConn) error {
	if err := conn.SetKeepAliveConfig(peerKeepAlive); err != nil {
		return fmt.Errorf("peer connection keepalive: %w", err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	return setUserTimeout(raw)
}

func setUserTimeout(raw syscall.RawConn) error {
	var sockErr error
	err := raw.Control(func(fd uintptr) {
		sockErr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(peerUserTimeout/time.Millisecond))
	})
	if err == nil {
		err = sockErr
	}
	if err != nil {
		return os.NewSyscallError("setsockopt TCP_USER_TIMEOUT", err)
	}
	return nil
}

// ackSilence turns the read deadline that bounds the wait for an
// acknowledgement into errPeerSilent.
func ackSilence(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errPeerSilent
	}
	return err
}
