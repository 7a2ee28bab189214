package supervise

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// A doorbell stands in the program's listener's queue for the host
// listener's connections: the listener is readable while one waits there.
// While it does, accepts serve that queue in order (takeBehindBell), so
// that the program's listener is readable exactly while an accept has a
// connection to give, as a kernel listener is.

// bellQueued says whether a doorbell of m waits in the program's listener
// (a ring under way is waited for: it holds m.mu until its doorbell is
// queued).
func (m *merged) bellQueued() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bell >= 0
}

// takeBehindBell takes the head of the program's listener's queue while a
// doorbell of m waits in it: a client that came before the doorbell as
// it is; at the doorbell, a host connection, the doorbell dropped with it.
// False when the queue is empty (the doorbell went to a sibling listener
// of SO_REUSEPORT, or another thread's accept has it) or when the
// doorbell's host connection is gone; the caller goes on.
//
// Taking the host connection first and leaving the doorbell queued (as
// before) left the listener readable with nothing to accept: a program
// that accepts once select or poll says its blocking listener is readable
// (busybox telnetd) then waited in accept for the next client, its open
// connections unserved.
func (s *Supervisor) takeBehindBell(m *merged, app int) (pending, bool) {
	conn, sa, err := m.acceptApp(app)
	if err != nil {
		return pending{}, false
	}
	peer, _ := parseSockaddr(sa)
	owner := s.servers.bellOwner(peer)
	if owner == nil {
		return pending{fd: conn, peer: sa}, true
	}
	var p pending
	var ok bool
	if owner == m {
		// Before the doorbell is answered: answering watches the host
		// listener again, and a connection still there rings anew.
		p, ok = s.acceptHost(m)
	}
	s.servers.answerBell(conn, peer)
	return p, ok
}

// acceptApp takes a connection from the program's listener app without
// waiting, whether the program's file is non-blocking or not: EAGAIN when
// nothing waits there. The supervisor's accepts of one listener take
// turns, so the one that saw it readable takes what it saw.
func (m *merged) acceptApp(app int) (int, []byte, error) {
	m.appMu.Lock()
	defer m.appMu.Unlock()
	fds := []unix.PollFd{{Fd: int32(app), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 0); err != nil || n == 0 {
		return -1, nil, unix.EAGAIN
	}
	return acceptRaw(app, unix.SOCK_CLOEXEC)
}

// bellOwner is the merged listener whose doorbell has the address peer,
// or nil: peer is a client.
func (l *listeners) bellOwner(peer netip.AddrPort) *merged {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bells[peer]
}

// bellAckWait is how long a ring waits for the program's listener to
// acknowledge the doorbell's byte (loopback: at once).
const bellAckWait = 50 * time.Millisecond

// waitAcked waits until everything sent on fd is acknowledged. For a
// doorbell, that says it is in the listener's queue: the kernel queues a
// connection before its socket processes (and acknowledges) data, also
// for a listener with TCP_DEFER_ACCEPT; a connected client socket alone
// does not (the handshake's last ACK may still be on its way).
func waitAcked(fd int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		unsent, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
		if err != nil || unsent == 0 {
			return err == nil
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Microsecond)
	}
}
