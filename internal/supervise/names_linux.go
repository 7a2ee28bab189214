package supervise

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// overlayNames are an accelerated connection's addresses on the overlay.
type overlayNames struct {
	local, peer netip.AddrPort // IPv4
	inet6       bool           // an AF_INET6 host socket: shown v4-mapped
}

// nameBook remembers the overlay addresses of the host sockets the
// supervisor handed out, by socket cookie. It forgets those that no longer
// exist: each is registered (without a reference) in an epoll instance of
// its own, the witness, which the kernel empties of sockets whose last
// file is closed, and /proc/thread-self/fdinfo of the witness lists the
// living.
type nameBook struct {
	mu       sync.Mutex
	byCookie map[uint64]overlayNames
	witness  int
	sweepAt  int // sweep when the book grows past this
}

const firstSweep = 256

func newNameBook() (*nameBook, error) {
	w, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &nameBook{byCookie: map[uint64]overlayNames{}, witness: w, sweepAt: firstSweep}, nil
}

// add records the names of the host socket fd.
func (b *nameBook) add(fd int, names overlayNames) {
	cookie := socketCookie(fd)
	if cookie == 0 {
		return
	}
	ev := epollEvent(0, cookie)
	unix.EpollCtl(b.witness, unix.EPOLL_CTL_ADD, fd, &ev)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byCookie[cookie] = names
	if len(b.byCookie) >= b.sweepAt {
		b.sweep()
		b.sweepAt = max(firstSweep, 2*len(b.byCookie))
	}
}

func (b *nameBook) lookup(cookie uint64) (overlayNames, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.byCookie[cookie]
	return n, ok
}

// sweep forgets sockets that are gone. b.mu is held.
func (b *nameBook) sweep() {
	live, err := witnessed(b.witness)
	if err != nil {
		return
	}
	for cookie := range b.byCookie {
		if !live[cookie] {
			delete(b.byCookie, cookie)
		}
	}
}

// witnessed lists the data of the registrations an epoll instance of the
// supervisor still holds.
func witnessed(epfd int) (map[uint64]bool, error) {
	// thread-self, not self: /proc/self is the thread group leader's
	// file table, which is the epoll mover's own once the mover's
	// goroutine started on the leader (it unshares its table). The
	// calling goroutine's thread is never the mover's (locked to it).
	f, err := os.Open(fmt.Sprintf("/proc/thread-self/fdinfo/%d", epfd))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	live := map[uint64]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 6 && fields[0] == "tfd:" && fields[4] == "data:" {
			if v, err := strconv.ParseUint(fields[5], 16, 64); err == nil {
				live[v] = true
			}
		}
	}
	return live, s.Err()
}

// name handles getsockname and getpeername: for a host socket the
// supervisor handed out, the overlay address; anything else is the
// kernel's (the decision reads no pointer).
func (s *Supervisor) name(r *request, peer bool) {
	sock, err := r.file(r.fdArg(0))
	if err != nil {
		r.proceed()
		return
	}
	names, ok := s.names.lookup(socketCookie(sock))
	if !ok {
		r.proceed()
		return
	}
	addr := names.local
	if peer {
		// The kernel says whether it is connected (ENOTCONN); the
		// supervisor says to whom.
		if _, err := unix.Getpeername(sock); err != nil {
			r.fail(errnoOf(err))
			return
		}
		addr = names.peer
	}
	if err := r.writeSockaddr(r.arg(1), r.arg(2), sockaddrOf(addr, names.inet6)); err != nil {
		r.fail(errnoOf(err))
		return
	}
	r.succeed(0)
}

// errnoOf is the errno for the program of an error of the supervisor's.
func errnoOf(err error) unix.Errno {
	if errno, ok := err.(unix.Errno); ok {
		return errno
	}
	if err == errGone {
		return unix.EINTR
	}
	return unix.EIO
}
