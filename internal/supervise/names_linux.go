package supervise

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/namebook"
)

// overlayNames are an accelerated connection's addresses on the overlay.
type overlayNames struct {
	local, peer netip.AddrPort // IPv4
	inet6       bool           // an AF_INET6 host socket: shown v4-mapped
	// kernel: a host socket the program received whose overlay names the
	// router does not know: the kernel's are shown (receivedNames).
	kernel bool
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

// add records the names of the host socket fd and returns its cookie (0:
// none, nothing recorded).
func (b *nameBook) add(fd int, names overlayNames) uint64 {
	cookie := socketCookie(fd)
	if cookie == 0 {
		return 0
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
	return cookie
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
	cookie := socketCookie(sock)
	names, ok := s.names.lookup(cookie)
	if !ok {
		names, ok = s.receivedNames(sock, cookie)
	}
	if !ok || names.kernel {
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

// receivedNames: a host socket the supervisor did not hand out is a
// connection the program received from another process (SCM_RIGHTS, which
// is not trapped), whose sender wrote its overlay names in the
// container's name book (docs/datapath.md, "A connection passed to
// another process"). It reads them there, checks what it can (the
// container's own address as the local one, the socket's family), and
// remembers them, or that there are none, for the socket's life. A socket
// of the program's own namespace is not looked up (false).
func (s *Supervisor) receivedNames(sock int, cookie uint64) (overlayNames, bool) {
	ns, err := unix.GetsockoptUint64(sock, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil || ns == s.netns || cookie == 0 {
		return overlayNames{}, false
	}
	domain, err := unix.GetsockoptInt(sock, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || (domain != unix.AF_INET && domain != unix.AF_INET6) {
		return overlayNames{}, false
	}
	if typ, err := unix.GetsockoptInt(sock, unix.SOL_SOCKET, unix.SO_TYPE); err != nil || typ != unix.SOCK_STREAM {
		return overlayNames{}, false
	}
	n := overlayNames{kernel: true}
	book, self := s.containerBook(true), s.self.Load()
	if book != nil && self != nil {
		got, ok := book.Get(cookie)
		// The supervisor shows no IPv6 overlay addresses (they stay on
		// the overlay for its programs): such names stay the kernel's.
		form := namebook.FormIPv4
		if domain == unix.AF_INET6 {
			form = namebook.FormMapped
		}
		if ok && got.Form == form && got.Local.Addr() == self.Addr && self.Overlay.Contains(got.Peer.Addr()) {
			n = overlayNames{local: got.Local, peer: got.Peer, inet6: domain == unix.AF_INET6}
		}
	}
	s.logf("received connection (cookie %d): names %+v", cookie, n)
	s.names.add(sock, n)
	return n, true
}

// remember records the overlay names of a host socket the supervisor
// hands the program: for the program's getsockname and getpeername, and
// (plain mode) in the container's name book, for a process outside this
// supervisor that the program may pass the socket to (its sendmsg is not
// trapped, so every connection is written: a few stores).
func (s *Supervisor) remember(fd int, n overlayNames) {
	cookie := s.names.add(fd, n)
	book := s.containerBook(false)
	if book == nil || cookie == 0 {
		return
	}
	form := namebook.FormIPv4
	if n.inet6 {
		form = namebook.FormMapped
	}
	book.Put(cookie, namebook.Names{Local: n.local, Peer: n.peer, Form: form}, namebook.NowMS())
}

// bookPause is how long the supervisor goes without the name book after
// the router gave none.
const bookPause = 10 * time.Second

// containerBook is the container's name book (plain mode), or nil while
// the router has not given it: asked for on a goroutine of its own, so
// that no accept or connect waits behind a LISTEN on the router
// connection. wait: wait for the answer (a name the program asks for).
func (s *Supervisor) containerBook(wait bool) *namebook.Book {
	if b := s.book.Load(); b != nil || s.cfg.Secure {
		return b
	}
	s.bookMu.Lock()
	done := s.bookDone
	if done == nil && time.Now().After(s.bookAt) {
		done = make(chan struct{})
		s.bookDone = done
		go s.fetchBook(done)
	}
	s.bookMu.Unlock()
	if wait && done != nil {
		<-done
	}
	return s.book.Load()
}

// fetchBook asks the router for the name book (NAMEBOOK) and maps it.
func (s *Supervisor) fetchBook(done chan struct{}) {
	b, err := s.router.nameBook()
	s.bookMu.Lock()
	if err != nil {
		s.logf("name book: %v", err)
		s.bookAt = time.Now().Add(bookPause)
	} else {
		s.book.Store(b)
	}
	s.bookDone = nil
	s.bookMu.Unlock()
	close(done)
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
