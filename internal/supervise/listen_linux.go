package supervise

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// merged is a program's listener with the host listener standing for it
// (the router publishes the host listener in the directory). The program
// never holds the host listener: the supervisor accepts from it when the
// program accepts from its own. To wake the program when only the host
// listener has a connection, the supervisor connects a doorbell to the
// program's listener (loopback, no overlay traffic), which makes it
// readable for epoll, poll, select and blocking accepts alike; the
// supervisor accepts the doorbell itself and drops it.
type merged struct {
	id      uint64         // the program's listener's socket cookie
	inet6   bool           // the program's listener is AF_INET6 (dual-stack), its host listener too
	host    int            // the host listener, non-blocking
	overlay netip.AddrPort // the address the router published
	target  netip.AddrPort // where a doorbell connects

	armed atomic.Bool // published: a trapped accept was seen on the program's listener
	// waiting counts the program's blocking accepts the supervisor waits
	// in for this listener (they watch the host listener themselves: no
	// doorbell needed); unrung says the host listener's watch fired
	// while one waited and was not re-armed (leaveToWaiter).
	waiting atomic.Int32
	unrung  atomic.Bool
	// mirrored says the host listener is registered in the program's
	// epoll instance under its listener's number (mirror_linux.go): host
	// connections wake the program without a doorbell, unless needsBell
	// says someone waits for the listener in a way the mirror does not
	// reach (then doorbells ring as before, for good).
	mirrored  atomic.Bool
	needsBell atomic.Bool

	mu       sync.Mutex
	bell     int            // the doorbell's connecting end; -1: none queued
	bellAddr netip.AddrPort // its address: the peer the program's listener sees
	stash    []pending      // connections taken for a caller that went away
	closed   bool

	appMu sync.Mutex // the supervisor's accepts from the program's listener take turns (acceptApp)
}

// pending is a connection the supervisor accepted for the program.
type pending struct {
	fd    int
	peer  []byte        // the peer's address as accept writes it for the program
	names *overlayNames // a host connection's, nil for the program's own
}

// bellTimeout bounds a doorbell's handshake (loopback).
const bellTimeout = 200 * time.Millisecond

// listenerSweep is how often the supervisor looks for listeners the
// program closed.
const listenerSweep = time.Second

// listeners are the merged listeners of the supervised programs.
type listeners struct {
	s        *Supervisor
	mu       sync.Mutex
	byCookie map[uint64]*merged
	// bells are the doorbells waiting, by their address: with
	// SO_REUSEPORT, one may land on another listener of the same port.
	bells   map[netip.AddrPort]*merged
	watch   int // epoll: host listeners, EPOLLIN|EPOLLONESHOT, data: id
	witness int // epoll: the program's listeners, without a reference, data: id
}

func newListeners(s *Supervisor) (*listeners, error) {
	watch, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	witness, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		unix.Close(watch)
		return nil, err
	}
	l := &listeners{s: s, byCookie: map[uint64]*merged{}, bells: map[netip.AddrPort]*merged{}, watch: watch, witness: witness}
	go l.watchHosts()
	go func() {
		for range time.Tick(listenerSweep) {
			l.sweep()
		}
	}()
	return l, nil
}

func (l *listeners) get(id uint64) *merged {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byCookie[id]
}

// add starts serving a merged listener; app is the program's listener.
func (l *listeners) add(m *merged, app int) error {
	wit := epollEvent(0, m.id)
	if err := unix.EpollCtl(l.witness, unix.EPOLL_CTL_ADD, app, &wit); err != nil {
		return err
	}
	l.mu.Lock()
	l.byCookie[m.id] = m
	l.mu.Unlock()
	ev := epollEvent(unix.EPOLLIN|unix.EPOLLONESHOT, m.id)
	return unix.EpollCtl(l.watch, unix.EPOLL_CTL_ADD, m.host, &ev)
}

// watchHosts rings the doorbell of each listener whose host listener has
// a connection.
func (l *listeners) watchHosts() {
	events := make([]unix.EpollEvent, 32)
	for {
		n, err := unix.EpollWait(l.watch, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			l.s.logf("watch host listeners: %v", err)
			return
		}
		for _, ev := range events[:n] {
			m := l.get(epollData(ev))
			if m == nil || m.bellless() {
				// The watch stays disarmed: needBell re-arms it.
				continue
			}
			if !l.leaveToWaiter(m) {
				l.ring(m)
			}
		}
	}
}

// bellless says host connections wake the program through the mirrored
// registration alone.
func (m *merged) bellless() bool { return m.mirrored.Load() && !m.needsBell.Load() }

// needBell makes m ring doorbells again from now on: someone waits for
// the listener in a way the mirrored registration does not reach.
func (l *listeners) needBell(m *merged) {
	if !m.needsBell.Swap(true) && m.mirrored.Load() {
		l.rearm(m) // the watch may have fired unrung meanwhile
	}
}

// rearm watches a host listener again once its doorbell is answered.
func (l *listeners) rearm(m *merged) {
	ev := epollEvent(unix.EPOLLIN|unix.EPOLLONESHOT, m.id)
	unix.EpollCtl(l.watch, unix.EPOLL_CTL_MOD, m.host, &ev)
}

// sweep withdraws the listeners the program closed (their last file is
// gone: the witness forgot them).
func (l *listeners) sweep() {
	live, err := witnessed(l.witness)
	if err != nil {
		return
	}
	var gone []*merged
	l.mu.Lock()
	for id, m := range l.byCookie {
		if !live[id] {
			gone = append(gone, m)
			delete(l.byCookie, id)
		}
	}
	l.mu.Unlock()
	for _, m := range gone {
		l.withdraw(m)
	}
}

// withdraw tells the router the listener is gone and closes it.
func (l *listeners) withdraw(m *merged) {
	m.mu.Lock()
	m.closed = true
	if m.bell >= 0 {
		closeReset(m.bell)
		m.bell = -1
		l.forgetBell(m.bellAddr)
	}
	for _, p := range m.stash {
		unix.Close(p.fd)
	}
	m.stash = nil
	m.mu.Unlock()
	unix.EpollCtl(l.watch, unix.EPOLL_CTL_DEL, m.host, nil)
	if err := l.s.router.unlisten(m.host); err != nil {
		l.s.logf("UNLISTEN %v: %v", m.overlay, err)
	}
	unix.Close(m.host)
	l.s.logf("listener %v withdrawn", m.overlay)
}

// closeAll withdraws every listener: the supervision ends.
func (l *listeners) closeAll() {
	l.mu.Lock()
	all := l.byCookie
	l.byCookie = map[uint64]*merged{}
	l.mu.Unlock()
	for _, m := range all {
		l.withdraw(m)
	}
}

// ring connects a doorbell to the program's listener, unless one waits
// there already.
func (l *listeners) ring(m *merged) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.bell >= 0 {
		return
	}
	fd, local, err := bellSocket(m.target)
	if err != nil {
		l.s.logf("doorbell for %v: %v", m.overlay, err)
		return
	}
	// Known before it can be accepted: an accept on another thread
	// must tell it from a client.
	m.bell, m.bellAddr = fd, local
	l.mu.Lock()
	l.bells[local] = m
	l.mu.Unlock()
	err = unix.Connect(fd, toSockaddr(m.target, false))
	if err == nil || err == unix.EINPROGRESS {
		err = waitConnected(fd, bellTimeout)
	}
	if err != nil {
		l.s.logf("doorbell for %v: %v", m.overlay, err)
		closeReset(fd)
		m.bell = -1
		// Known a while longer: a connection from it may still be
		// queued.
		time.AfterFunc(time.Second, func() { l.forgetBell(local) })
		return
	}
	// One byte, for a listener with TCP_DEFER_ACCEPT. Once it is
	// acknowledged the doorbell is in the program's listener's queue, and
	// accepts serve that queue in order (takeBehindBell).
	unix.SendmsgN(fd, []byte{0}, nil, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
	if !waitAcked(fd, bellAckWait) {
		l.s.logf("doorbell for %v: not acknowledged within %v", m.overlay, bellAckWait)
	}
}

// bellSocket makes a doorbell's socket, bound to a port of its own on the
// target's address (loopback for a listener on all addresses).
func bellSocket(target netip.AddrPort) (int, netip.AddrPort, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, netip.AddrPort{}, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: target.Addr().As4()}); err != nil {
		unix.Close(fd)
		return -1, netip.AddrPort{}, err
	}
	local, err := localAddr(fd)
	if err != nil {
		unix.Close(fd)
		return -1, netip.AddrPort{}, err
	}
	return fd, local, nil
}

// answerBell drops conn, a connection the supervisor accepted from a
// program's listener, if it is a doorbell (peer is a doorbell's address),
// and watches the host listener it rang for again; false if it is not one.
func (l *listeners) answerBell(conn int, peer netip.AddrPort) bool {
	l.mu.Lock()
	m, ok := l.bells[peer]
	delete(l.bells, peer)
	l.mu.Unlock()
	if !ok {
		return false
	}
	closeReset(conn)
	m.mu.Lock()
	if m.bell >= 0 && m.bellAddr == peer {
		closeReset(m.bell)
		m.bell = -1
	}
	closed := m.closed
	m.mu.Unlock()
	if !closed {
		l.rearm(m)
	}
	return true
}

func (l *listeners) forgetBell(addr netip.AddrPort) {
	l.mu.Lock()
	delete(l.bells, addr)
	l.mu.Unlock()
}

func (m *merged) takeStash() (pending, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.stash) == 0 {
		return pending{}, false
	}
	p := m.stash[0]
	m.stash = m.stash[1:]
	return p, true
}

func (m *merged) putStash(p pending) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		unix.Close(p.fd)
		return
	}
	m.stash = append(m.stash, p)
}

// epollData is struct epoll_event's data.
func epollData(ev unix.EpollEvent) uint64 {
	return *(*uint64)(unsafeAdd(&ev))
}

// listen handles listen(fd, backlog): performed here, on the program's
// socket; a TCP listener on the container's overlay address (or all its
// addresses) then gets a host listener from the router.
func (s *Supervisor) listen(r *request) {
	app, err := r.file(r.fdArg(0))
	if err != nil {
		r.proceed()
		return
	}
	info, err := inspect(app)
	if err != nil || !info.tcp || info.netns != s.netns {
		s.logf("listen on fd %d left to the kernel: %+v %v (netns %d)", r.fdArg(0), info, err, s.netns)
		r.proceed()
		return
	}
	backlog := int(int32(r.arg(1)))
	first := s.servers.get(info.cookie) == nil
	reserved := first && s.reserve(app, info)
	if err := unix.Listen(app, backlog); err != nil {
		if reserved {
			s.router.unlisten(app) // names the reservation by the socket's cookie
		}
		r.fail(errnoOf(err))
		return
	}
	if first {
		pid, err := threadGroup(r.tid())
		if err != nil {
			pid = r.tid()
		}
		s.accelerate(pid, r.fdArg(0), app, info, backlog)
	}
	r.succeed(0)
}

// reserve asks the router, before the program's socket app listens, to
// list its overlay address as pending: from the socket's listen() until
// the peers have the LISTEN that follows (a few milliseconds), a client
// would otherwise find no entry and connect over the overlay, to the
// listening socket, for the connection's life; with the reservation it
// waits for the listener to be armed. A cluster whose members dial each
// other as they start (NATS routes) had one of them on the overlay in
// about one start of eight. Only a socket bound to a port of the
// container's address, or of all its addresses, that would carry IPv4 is
// reserved (an unbound one gets its port from listen()); a router that
// does not know RESERVE refuses it, and the listen goes on as before.
func (s *Supervisor) reserve(app int, info sockInfo) bool {
	if v, err := unix.GetsockoptInt(app, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 0 {
		return false
	}
	bound, err := localAddr(app)
	if err != nil || bound.Port() == 0 || (info.inet6 && info.v6only) {
		return false
	}
	self, known := s.who()
	if !known || !bound.Addr().IsUnspecified() && bound.Addr() != self.Addr {
		return false
	}
	s.servers.sweep() // a listener the program closed may hold the port's entry
	if err := s.router.reserve(app); err != nil {
		s.logf("no reservation for %v: %v", bound, err)
		return false
	}
	return true
}

// accelerate asks the router for a host listener standing for the
// program's listener app (its fd). An AF_INET6 listener qualifies when it
// carries IPv4: bound to :: without IPV6_V6ONLY, or to the container's
// address v4-mapped.
func (s *Supervisor) accelerate(pid, fd, app int, info sockInfo, backlog int) {
	bound, err := localAddr(app)
	if err != nil {
		return
	}
	if info.inet6 && !s.carriesIPv4(fd, info, bound) {
		return
	}
	self, known := s.who()
	target := bound
	switch {
	case !known:
		return // the router does not answer: the overlay
	case bound.Addr().IsUnspecified():
		target = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), bound.Port())
	case bound.Addr() != self.Addr:
		return // loopback or another address: not on the overlay
	}
	s.servers.sweep() // one the program closed may have had this port
	host, published, err := s.router.listen(app, backlog)
	if info.inet6 && refusedInet6(err) {
		s.ipv6LeftAlone(fd, v6Secure)
		return
	}
	if err != nil {
		s.logf("listener %v stays on the overlay: %v", bound, err)
		return
	}
	if err := setNonblock(host, true); err != nil {
		unix.Close(host)
		return
	}
	m := &merged{id: info.cookie, inet6: info.inet6, host: host, overlay: published.Overlay, target: target, bell: -1}
	if err := s.servers.add(m, app); err != nil {
		s.logf("listener %v: %v", bound, err)
		s.servers.withdraw(m)
		return
	}
	// Pending until the program is seen waiting on its listener in a
	// way the supervisor serves (waiters_linux.go).
	go s.servers.watchPending(m, pid, fd)
	s.logf("listener %v merged with host listener %v, pending until the program accepts", published.Overlay, published.Host)
}

// arm publishes a merged listener's host listener, once: the program
// accepts from its listener with calls the supervisor traps.
func (l *listeners) arm(m *merged) {
	if m.armed.Swap(true) {
		return
	}
	go func() {
		if err := l.s.router.publish(m.host, m.overlay); err != nil {
			l.s.logf("PUBLISH %v: %v", m.overlay, err)
			m.armed.Store(false) // the next accept tries again
			return
		}
		l.s.logf("listener %v published", m.overlay)
	}()
}

// carriesIPv4 says whether an AF_INET6 listener bound to bound carries
// IPv4; one that does not is left alone, counted as the shim counts it.
func (s *Supervisor) carriesIPv4(fd int, info sockInfo, bound netip.AddrPort) bool {
	a := bound.Addr()
	switch {
	case a.Is6() && !a.IsUnspecified():
		if !a.IsLoopback() {
			s.ipv6LeftAlone(fd, v6Bound)
		}
		return false
	case info.v6only:
		s.ipv6LeftAlone(fd, v6Only)
		return false
	}
	return true
}

// leaveToWaiter says whether a blocking accept of the program waits in
// the supervisor for m: it takes the host listener's connection itself, so
// no doorbell is rung, and it re-arms the watch when it leaves
// (waiterDone). Exactly one of the two acts on unrung.
func (l *listeners) leaveToWaiter(m *merged) bool {
	m.unrung.Store(true)
	if m.waiting.Load() > 0 {
		return true
	}
	return !m.unrung.Swap(false) // the waiter left meanwhile and re-armed
}

// waiterStart and waiterDone bracket a blocking accept's wait.
func (l *listeners) waiterStart(m *merged) { m.waiting.Add(1) }

func (l *listeners) waiterDone(m *merged) {
	m.waiting.Add(-1)
	if m.unrung.Swap(false) {
		l.rearm(m) // fires at once if the host listener still has a connection
	}
}
