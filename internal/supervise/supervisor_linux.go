package supervise

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/seccompnotif"
	"github.com/slimnet/slim/router/namebook"
	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/secure/ioctlguard"
)

// Supervisor answers the socket calls of the programs under one filter.
type Supervisor struct {
	listener  int
	cfg       Config
	self      atomic.Pointer[protocol.Hello] // nil until the router answered HELLO
	helloMu   sync.Mutex
	helloAt   time.Time // when HELLO may be asked again
	netns     uint64    // cookie of the program's (the container's) network namespace
	router    *router
	pool      *pool // AF_INET host sockets
	pool6     *pool // AF_INET6 ones, for AF_INET6 sockets connecting to IPv4
	dir       *directoryTable
	defaults  optionValues // a fresh TCP socket's options
	defaults6 optionValues // a fresh AF_INET6 TCP socket's
	v6Said    [v6Cases]atomic.Bool
	epolls    epollIndex
	goRuns    goRuntimes
	mover     *epollMover
	names     *nameBook
	book      atomic.Pointer[namebook.Book] // the container's name book (names_linux.go)
	bookMu    sync.Mutex
	bookAt    time.Time     // when the router may be asked for it again
	bookDone  chan struct{} // closed when the request under way is answered
	servers   *listeners
	shared    sharedSockets
	skips     skipTable // pending listeners not waited for again
	pidfds    pidfdCache
	stats     stats
	debug     io.Writer
	logMu     sync.Mutex
}

// Setup is ioctlguard.SocketSetup for slim's guard: it reads the
// configuration, asks the router who the program is (HELLO) and returns
// the supervisor. When it cannot supervise, it says why in one line and
// the guard lets the kernel run every trapped call (the program uses the
// overlay).
func Setup(listener int, config []byte, files []int) (ioctlguard.SocketHandler, string) {
	cfg, err := DecodeConfig(config)
	if err != nil {
		closeAll(files)
		return nil, err.Error()
	}
	s, err := New(listener, cfg, files)
	if err != nil {
		return nil, fmt.Sprintf("slim exec: no acceleration: %v; the program uses the overlay", err)
	}
	return s, ""
}

// New makes a supervisor for the filter's listener. files are connections
// to the router made by the program's slim exec (secure mode).
func New(listener int, cfg Config, files []int) (*Supervisor, error) {
	s := &Supervisor{listener: listener, cfg: cfg, router: newRouter(cfg, files)}
	if cfg.Debug {
		s.debug = os.Stderr
	}
	if _, err := s.askHello(); err != nil {
		// The program runs, over the overlay until the router answers.
		s.logf("the router at %s: %v", cfg.RouterSock, err)
	}
	probe, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	s.defaults = readOptions(probe)
	s.netns, err = unix.GetsockoptUint64(probe, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	unix.Close(probe)
	if err != nil {
		return nil, fmt.Errorf("read the network namespace cookie (SO_NETNS_COOKIE, Linux 5.14): %w", err)
	}
	if s.mover, err = newEpollMover(); err != nil {
		return nil, err
	}
	if s.defaults6, err = readDefaults(unix.AF_INET6); err != nil {
		// No IPv6 in the kernel: no AF_INET6 socket to accelerate.
		s.logf("AF_INET6 sockets: %v", err)
	}
	s.pool = &pool{router: s.router, family: protocol.PoolInet, log: s.logf}
	s.pool6 = &pool{router: s.router, family: protocol.PoolInet6, log: s.logf}
	s.dir = newDirectory(cfg.RouterSock, s.router)
	if s.names, err = newNameBook(); err != nil {
		return nil, err
	}
	if s.servers, err = newListeners(s); err != nil {
		return nil, err
	}
	if !cfg.Secure {
		// In secure mode the program is not enrolled yet: the first
		// connect fills the pool.
		go s.pool.refill()
		s.containerBook(false)
	}
	s.stats.run(s.router.stats)
	return s, nil
}

// Handle answers one trapped call, on the guard's goroutine (which saves
// waking another thread; the calls of a program's threads then wait for
// each other, a few tens of µs each). A call that may wait long (a
// blocking accept; a listen, which the router publishes to its peers
// before it answers) goes on on a goroutine of its own.
func (s *Supervisor) Handle(n seccompnotif.Notif, answered func()) {
	r := newRequest(s.listener, n)
	r.pidfds = &s.pidfds
	r.done = answered
	if lookup(n.Data.Arch, n.Data.Nr) == callListen {
		s.detach(r, func() { s.listen(r) })
		return
	}
	defer s.finish(r)
	s.dispatch(r)
}

// detach handles the rest of r on a goroutine of its own.
func (s *Supervisor) detach(r *request, rest func()) {
	r.detached = true
	go func() {
		defer s.finishDetached(r)
		rest()
	}()
}

// finish ends a request the handler returned from: answered (the kernel
// runs it if nobody did) and released, unless it went on elsewhere.
func (s *Supervisor) finish(r *request) {
	s.recoverFrom(r)
	if !r.detached {
		r.close()
		r.done()
	}
}

func (s *Supervisor) finishDetached(r *request) {
	s.recoverFrom(r)
	r.close()
	r.done()
}

func (s *Supervisor) recoverFrom(r *request) {
	if p := recover(); p != nil {
		s.logf("panic on %+v: %v\n%s", r.n.Data, p, debug.Stack())
	}
}

func (s *Supervisor) dispatch(r *request) {
	switch lookup(r.n.Data.Arch, r.n.Data.Nr) {
	case callConnect:
		s.connect(r)
	case callAccept:
		s.accept(r, 0)
	case callAccept4:
		s.accept(r, int(int32(r.arg(3))))
	case callGetsockname:
		s.name(r, false)
	case callGetpeername:
		s.name(r, true)
	case callDup:
		s.dup(r)
	case callEpollCreate:
		s.epolls.forgetAll()
		r.proceed()
	default:
		r.proceed()
	}
}

// Close ends the supervision: no process is left under the filter.
func (s *Supervisor) Close() {
	s.servers.closeAll()
	s.pool.close()
	s.pool6.close()
	// The last counts, and a HELLO behind them: the router has read the
	// STATS when it answers, while the sender still exists.
	s.stats.close(s.router.stats)
	s.router.hello()
}

// helloPause is how long the supervisor leaves a router that did not
// answer HELLO alone.
const helloPause = time.Second

// who is what the router said of the program's container (HELLO), asking
// again at most once per helloPause while it has not answered; false: not
// known (the call proceeds over the overlay).
func (s *Supervisor) who() (protocol.Hello, bool) {
	if h := s.self.Load(); h != nil {
		return *h, true
	}
	s.helloMu.Lock()
	defer s.helloMu.Unlock()
	if h := s.self.Load(); h != nil {
		return *h, true
	}
	if time.Now().Before(s.helloAt) {
		return protocol.Hello{}, false
	}
	h, err := s.askHello()
	return h, err == nil
}

func (s *Supervisor) askHello() (protocol.Hello, error) {
	h, err := s.router.hello()
	if err != nil {
		s.helloAt = time.Now().Add(helloPause)
		return protocol.Hello{}, err
	}
	s.self.Store(&h)
	return h, nil
}

func (s *Supervisor) logf(format string, args ...any) {
	if s.debug == nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.debug, "slim supervisor: "+format+"\n", args...)
}
