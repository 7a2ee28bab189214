package supervise

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// preambleWait bounds the wait for a host connection's preamble (it rides
// in the SYN, and the router's listeners defer the accept until data
// came: it is normally there at once).
const preambleWait = time.Second

// blockedTick is how often a blocking accept the supervisor waits for
// looks whether its caller still waits and has a signal to handle.
const blockedTick = 100 * time.Millisecond

// accept handles accept and accept4 (with flags). Only merged listeners
// are the supervisor's: their accepts are performed here, from the host
// listener first, then from the program's listener (doorbells dropped);
// while a doorbell waits in the program's listener, from that listener's
// queue in order (takeBehindBell). Anything else proceeds (the decision
// reads no pointer).
func (s *Supervisor) accept(r *request, flags int) {
	app, err := r.file(r.fdArg(0))
	if err != nil {
		r.proceed()
		return
	}
	m := s.servers.get(socketCookie(app))
	if m == nil {
		r.proceed()
		return
	}
	s.servers.arm(m)
	s.mirror(r, m, r.fdArg(0), app)
	if flags&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC) != 0 {
		r.fail(unix.EINVAL)
		return
	}
	s.acceptMerged(r, m, app, flags)
}

func (s *Supervisor) acceptMerged(r *request, m *merged, app, flags int) {
	nb, err := nonblocking(app)
	if err != nil {
		r.fail(errnoOf(err))
		return
	}
	if !nb {
		// A connection that is there already is delivered on the
		// guard's goroutine: handing the call to another goroutine
		// (another thread to wake) is for waiting.
		if p, ok := s.takeReady(m, app); ok {
			s.deliver(r, m, p, flags)
			return
		}
		s.detach(r, func() { s.acceptLoop(r, m, app, flags, false) })
		return
	}
	s.acceptLoop(r, m, app, flags, true)
}

// acceptLoop takes the next connection for the caller: what takeReady
// finds, else the program's listener's (doorbells dropped); a blocking
// accept waits for one.
func (s *Supervisor) acceptLoop(r *request, m *merged, app, flags int, nb bool) {
	if !nb {
		s.servers.waiterStart(m)
		defer s.servers.waiterDone(m)
	}
	for {
		if p, ok := s.takeReady(m, app); ok {
			s.deliver(r, m, p, flags)
			return
		}
		if !nb {
			hostReady, errno := s.waitBlocked(r, m, app)
			if errno != 0 {
				r.fail(errno)
				return
			}
			if hostReady {
				continue
			}
		}
		conn, sa, err := m.acceptApp(app)
		switch {
		case err == unix.EAGAIN && !nb:
			continue // another process took it first
		case err != nil:
			r.fail(errnoOf(err))
			return
		}
		if peer, ok := parseSockaddr(sa); ok && s.servers.answerBell(conn, peer) {
			continue
		}
		s.deliver(r, m, pending{fd: conn, peer: sa}, flags)
		return
	}
}

// takeReady takes, without waiting, a connection the caller could not
// take before; while a doorbell waits in the program's listener app, the
// head of its queue (takeBehindBell); or one the host listener has.
func (s *Supervisor) takeReady(m *merged, app int) (pending, bool) {
	if p, ok := m.takeStash(); ok {
		return p, true
	}
	if m.bellQueued() {
		if p, ok := s.takeBehindBell(m, app); ok {
			return p, true
		}
	}
	return s.acceptHost(m)
}

// acceptHost takes a connection from the host listener, its preamble read
// and removed; a connection without a valid one is dropped, never shown.
func (s *Supervisor) acceptHost(m *merged) (pending, bool) {
	for {
		conn, _, err := unix.Accept4(m.host, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
		case unix.ECONNABORTED, unix.EINTR:
			continue
		default:
			return pending{}, false
		}
		pre, err := readPreamble(conn)
		if self, _ := s.who(); err == nil && self.Secure {
			err = peerMatches(conn, pre.Client)
		}
		if err != nil {
			s.logf("host connection on %v dropped: %v", m.overlay, err)
			unix.Close(conn)
			continue
		}
		names := &overlayNames{local: pre.Server, peer: pre.Client, inet6: m.inet6}
		return pending{fd: conn, peer: sockaddrOf(pre.Client, m.inet6), names: names}, true
	}
}

// readPreamble reads the first bytes of a host connection.
func readPreamble(conn int) (protocol.Preamble, error) {
	buf := make([]byte, protocol.PreambleSize)
	got := 0
	deadline := time.Now().Add(preambleWait)
	for got < len(buf) {
		n, _, err := unix.Recvfrom(conn, buf[got:], unix.MSG_DONTWAIT)
		switch {
		case n > 0:
			got += n
			continue
		case err == nil:
			return protocol.Preamble{}, fmt.Errorf("closed after %d bytes", got)
		case err != unix.EAGAIN && err != unix.EINTR:
			return protocol.Preamble{}, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return protocol.Preamble{}, fmt.Errorf("no preamble within %v", preambleWait)
		}
		unix.Poll([]unix.PollFd{{Fd: int32(conn), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
	}
	return protocol.DecodePreamble(buf)
}

// peerMatches checks, in secure mode, that a preamble names the client the
// kernel vouches for (the router checked its SYN's MAC; getpeername answers
// the overlay address it carried): anyone else is a forgery by the client.
func peerMatches(conn int, client netip.AddrPort) error {
	peer, err := peerAddr(conn)
	if err != nil {
		return err
	}
	if peer != client {
		return fmt.Errorf("preamble names %v, the kernel %v", client, peer)
	}
	return nil
}

// waitBlocked waits, for a blocking accept, until a listener has a
// connection: true for the host listener. It gives up (with an errno to
// return) when the caller no longer waits, or has a signal to handle:
// EINTR, as the kernel's accept answers a signal without SA_RESTART (with
// WAIT_KILLABLE_RECV the signal waits for the answer).
func (s *Supervisor) waitBlocked(r *request, m *merged, app int) (bool, unix.Errno) {
	fds := []unix.PollFd{{Fd: int32(app), Events: unix.POLLIN}, {Fd: int32(m.host), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(blockedTick.Milliseconds()))
		if err != nil && err != unix.EINTR {
			return false, errnoOf(err)
		}
		if n > 0 {
			if fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
				return false, 0 // the kernel's accept says what is wrong
			}
			return fds[1].Revents&unix.POLLIN != 0, 0
		}
		if !r.valid() {
			return false, unix.EINTR
		}
		if signalPending(r.tid()) {
			return false, unix.EINTR
		}
	}
}

// signalPending reports whether thread tid has a signal pending that it
// neither blocks nor ignores.
func signalPending(tid int) bool {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return false
	}
	defer f.Close()
	masks := map[string]uint64{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		key, value, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		switch key {
		case "SigPnd", "ShdPnd", "SigBlk", "SigCgt":
			masks[key], _ = strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		}
	}
	return (masks["SigPnd"]|masks["ShdPnd"])&^masks["SigBlk"]&masks["SigCgt"] != 0
}

// deliver installs an accepted connection in the caller as accept's
// result, its address written where the caller asked. A connection the
// caller can no longer take waits for the next accept.
func (s *Supervisor) deliver(r *request, m *merged, p pending, flags int) {
	if err := setOwnNonblock(p.fd, flags&unix.SOCK_NONBLOCK != 0); err != nil {
		unix.Close(p.fd)
		r.fail(errnoOf(err))
		return
	}
	if addr := r.arg(1); addr != 0 {
		if err := r.writeSockaddr(addr, r.arg(2), p.peer); err != nil {
			if err == errGone {
				m.putStash(p)
				return
			}
			unix.Close(p.fd) // as the kernel: a bad address loses the connection
			r.fail(errnoOf(err))
			return
		}
	}
	if p.names != nil {
		s.remember(p.fd, *p.names)
	}
	if err := r.installAnswer(p.fd, flags&unix.SOCK_CLOEXEC != 0); err != nil {
		m.putStash(p)
		if err != errGone {
			r.fail(errnoOf(err))
		}
		return
	}
	// The supervisor's copy goes at once: the program's close ends the
	// connection.
	unix.Close(p.fd)
}
