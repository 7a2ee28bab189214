package supervise

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// connect handles connect(fd, addr, 16) and connect(fd, addr, 28) (an
// AF_INET6 socket's). A connect the supervisor leaves alone proceeds in
// the kernel: the decision read the address, but a program that changes
// it in between only gets the connection it could have asked for. One it
// accelerates is performed here, on the host socket, which then replaces
// the program's (docs/datapath.md, "The supervised path"). An AF_INET6
// socket connecting to a v4-mapped overlay address gets an AF_INET6 host
// socket, as under the shim.
func (s *Supervisor) connect(r *request) {
	fd := r.fdArg(0)
	app, err := r.file(fd)
	if err != nil {
		r.proceed() // the kernel says what is wrong with fd (EBADF …)
		return
	}
	info, err := inspect(app)
	if err != nil || !s.candidate(info) {
		// Not a fresh TCP socket of the container (another family, a
		// host socket already: a second connect, connected,
		// listening).
		r.proceed()
		return
	}
	size := uint32(r.arg(2)) // socklen_t
	if size != sockaddrInSize && size != sockaddrInet6Size {
		r.proceed()
		return
	}
	raw := make([]byte, size)
	if err := r.read(r.arg(1), raw); err != nil {
		r.proceed()
		return
	}
	dst, ok := parseSockaddr(raw)
	if !ok || (binary.LittleEndian.Uint16(raw) == unix.AF_INET6) != info.inet6 {
		r.proceed() // the kernel says what is wrong (EAFNOSUPPORT …)
		return
	}
	if ipv6, counted := v6Destination(dst); ipv6 {
		if counted {
			s.ipv6LeftAlone(fd, v6Dest)
		}
		r.proceed()
		return
	}
	s.connectIPv4(r, fd, app, info, dst)
}

// connectIPv4 goes on with a connect to an IPv4 destination.
func (s *Supervisor) connectIPv4(r *request, fd, app int, info sockInfo, dst netip.AddrPort) {
	self, known := s.who()
	if !known {
		s.stats.fallback(protocol.FallbackRouterUnreachable)
		r.proceed()
		return
	}
	if !accelerable(self, dst) {
		r.proceed() // not an overlay destination: not a fallback
		return
	}
	if info.v6only {
		s.ipv6LeftAlone(fd, v6Only) // the kernel refuses it: ENETUNREACH
		r.proceed()
		return
	}
	if s.shared.has(info.cookie) {
		// Other numbers hold the socket, which the swap would miss.
		s.stats.fallback(protocol.FallbackOther)
		r.proceed()
		return
	}
	host, st := s.dir.find(dst)
	switch st {
	case dirNone:
		s.stats.fallback(protocol.FallbackNoDirectoryEntry)
		r.proceed() // no accelerated listener there: the overlay
	case dirPending:
		// Waiting for it to be armed must not hold up the program's
		// other trapped calls.
		s.detach(r, func() {
			if host, ok := s.waitArmed(app, dst); ok {
				s.connectHost(r, self, fd, app, info.inet6, dst, host)
				return
			}
			s.stats.fallback(protocol.FallbackNoDirectoryEntry)
			r.proceed()
		})
	default:
		s.connectHost(r, self, fd, app, info.inet6, dst, host)
	}
}

// accelerable says whether dst is an overlay listener a host socket may
// reach.
func accelerable(self protocol.Hello, dst netip.AddrPort) bool {
	return dst.Port() != 0 && self.Overlay.Contains(dst.Addr()) && !dst.Addr().IsUnspecified()
}

// swap is what the supervisor prepared to put under the program's fd.
type swap struct {
	fd       int  // the program's number
	inet6    bool // AF_INET6: the host socket is one too
	blocking bool
	cloexec  bool
	regs     []registration
	bound    uint16 // the port the program's socket holds, 0: none
}

// connectHost connects a host socket to host for the program's socket app
// (its fd) and swaps it in.
func (s *Supervisor) connectHost(r *request, self protocol.Hello, fd, app int, inet6 bool, dst, host netip.AddrPort) {
	sw, err := s.prepare(r, self, fd, app, inet6)
	if err != nil {
		s.logf("fd %d to %v: stays on the overlay: %v", fd, dst, err)
		s.stats.fallback(fallbackReason(err))
		r.proceed()
		return
	}
	ps := s.poolOf(inet6).get()
	if ps < 0 {
		if inet6 && s.pool6.refusedFamily() {
			s.ipv6LeftAlone(fd, v6Secure)
			r.proceed()
			return
		}
		s.stats.fallback(protocol.FallbackPoolEmpty)
		r.proceed()
		return
	}
	lport, sent, err := s.dial(ps, app, self, sw, dst, host)
	if errors.Is(err, errUnreplayable) || errors.Is(err, errPortTaken) {
		unix.Close(ps)
		s.logf("fd %d to %v: stays on the overlay: %v", fd, dst, err)
		s.stats.fallback(fallbackReason(err))
		r.proceed()
		return
	}
	if err != nil {
		unix.Close(ps)
		r.fail(connectErrno(self, err))
		return
	}
	if sw.blocking {
		setOwnNonblock(ps, false)
	}
	if err := r.install(ps, fd, sw.cloexec); err != nil {
		unix.Close(ps)
		if !errors.Is(err, errGone) {
			s.stats.fallback(protocol.FallbackOther)
			r.proceed()
		}
		return
	}
	s.stats.setup(time.Since(r.received))
	s.moveRegistrations(r, sw, app, ps)
	local := netip.AddrPortFrom(self.Addr, lport)
	s.remember(ps, overlayNames{local: local, peer: dst, inet6: inet6})
	unix.Close(ps)
	switch {
	case sw.blocking:
		// The kernel's own connect on the host socket waits for the
		// handshake, with the program's timeouts and signals.
		r.proceed()
	case sent:
		r.fail(unix.EINPROGRESS)
	default:
		r.succeed(0)
	}
}

// errBoundElsewhere says the program's socket is bound to an address that
// is not the container's.
var errBoundElsewhere = errors.New("bound to another address")

// fallbackReason is the STATS reason of a connect left on the overlay.
func fallbackReason(err error) protocol.FallbackReason {
	switch {
	case errors.Is(err, errBoundElsewhere), errors.Is(err, errPortTaken):
		return protocol.FallbackBoundElsewhere
	case errors.Is(err, errUnreplayable):
		return protocol.FallbackOptionNotReplayable
	}
	return protocol.FallbackOther
}

// prepare reads what the host socket must carry over.
func (s *Supervisor) prepare(r *request, self protocol.Hello, fd, app int, inet6 bool) (swap, error) {
	sw := swap{fd: fd, inet6: inet6}
	flags, ino, err := r.fdFlags(fd)
	if err != nil {
		return sw, err
	}
	sw.blocking = flags&unix.O_NONBLOCK == 0
	sw.cloexec = flags&unix.O_CLOEXEC != 0
	var st unix.Stat_t
	if err := unix.Fstat(app, &st); err != nil || st.Ino != ino {
		return sw, errors.New("the fd changed meanwhile")
	}
	bound, err := localAddr(app)
	if err != nil {
		return sw, err
	}
	if !bound.Addr().IsUnspecified() && bound.Addr() != self.Addr {
		return sw, errBoundElsewhere
	}
	sw.bound = bound.Port()
	if sw.regs, err = s.epolls.registrations(r.tid(), fd, ino); err != nil {
		return sw, err
	}
	return sw, nil
}

// errPortTaken says the host has the port the program's socket holds.
var errPortTaken = errors.New("the host has the socket's port in use")

// dial dresses the pool socket ps like app and connects it to host with the
// preamble in its SYN (TCP Fast Open: the router's listeners take data in
// the SYN without a cookie). It returns the local port and whether the
// preamble went out; the handshake goes on in the background.
func (s *Supervisor) dial(ps, app int, self protocol.Hello, sw swap, dst, host netip.AddrPort) (uint16, bool, error) {
	if err := copyOptions(app, ps, s.defaultsOf(sw.inet6)); err != nil {
		return 0, false, err
	}
	if err := setOwnNonblock(ps, true); err != nil {
		return 0, false, err
	}
	if sw.bound != 0 {
		if err := unix.Bind(ps, anyAddr(sw.bound, sw.inet6)); err != nil {
			return 0, false, errPortTaken
		}
	}
	err := unix.Connect(ps, toSockaddr(host, sw.inet6))
	handshaking := err == unix.EINPROGRESS // TFO off for the route: a plain handshake
	if err != nil && !handshaking {
		return 0, false, err
	}
	local, err := localAddr(ps)
	if err != nil {
		return 0, false, err
	}
	pre := protocol.Preamble{Client: netip.AddrPortFrom(self.Addr, local.Port()), Server: dst}.Encode()
	if handshaking {
		if err := waitConnected(ps, time.Second); err != nil {
			return 0, false, err
		}
	}
	n, err := unix.SendmsgN(ps, pre, nil, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
	switch {
	case err != nil && err != unix.EINPROGRESS:
		return 0, false, err
	case err == nil && n != len(pre):
		return 0, false, unix.EIO
	}
	return local.Port(), !handshaking, nil
}

// waitConnected waits for a connecting socket's handshake.
func waitConnected(fd int, timeout time.Duration) error {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(fds, int(timeout.Milliseconds()))
	if err != nil {
		return err
	}
	if n == 0 {
		return unix.ETIMEDOUT
	}
	if soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soErr != 0 {
		if err == nil {
			err = unix.Errno(soErr)
		}
		return err
	}
	return nil
}

// connectErrno is what the program sees of a failed accelerated connect:
// the kernel's errno, but a policy refusal (EPERM from secure mode's
// programs) as ECONNREFUSED, as a firewall that rejects would.
func connectErrno(self protocol.Hello, err error) unix.Errno {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return unix.EIO
	}
	if errno == unix.EPERM && self.Secure {
		return unix.ECONNREFUSED
	}
	return errno
}

// moveRegistrations moves the old socket's epoll registrations to the new
// one, now at the program's number.
func (s *Supervisor) moveRegistrations(r *request, sw swap, old, new int) {
	if len(sw.regs) == 0 {
		return
	}
	var epolls []int // the request closes them
	for _, reg := range sw.regs {
		ep, err := r.file(reg.epfd)
		if err != nil {
			s.logf("fd %d: epoll %d is gone: %v", sw.fd, reg.epfd, err)
			return
		}
		epolls = append(epolls, ep)
	}
	if err := s.mover.move(sw.fd, sw.regs, epolls, old, new); err != nil {
		s.logf("fd %d: %v", sw.fd, err)
	}
}
