package shimserver

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slimnet/slim/internal/acceptloop"
	"github.com/slimnet/slim/router/protocol"
)

// Request is one decoded shim request with the descriptors it carried.
// The server closes the descriptors once the Session has answered.
type Request struct {
	protocol.Message
	FDs []int
}

// Handler identifies the callers of new connections.
type Handler interface {
	// Open says who is at the other end of a new connection (as the
	// kernel tells it) and returns the session that answers its
	// requests. It is called once per connection, before the limits.
	Open(conn *net.UnixConn) Session
}

// Session answers the requests of one connection, one at a time.
type Session interface {
	// Owner is what the connection counts against.
	Owner() Owner
	// Serve answers a request: the reply (nil for a one-way note) and
	// the descriptors to send with it, which the server closes after
	// sending (or failing to).
	Serve(req Request) (reply *protocol.Message, fds []int)
	// Answered runs once the reply to req is sent: work for the
	// connection's next requests, done while the shim no longer waits.
	Answered(req Request)
	// End runs once, when the connection ends.
	End()
}

// Server serves shim connections. Create it with New.
type Server struct {
	handler Handler
	limits  Limits
	log     *slog.Logger
	counts  connCounts

	// closing is set when the server stops: connections end once their
	// request in progress is answered. mu guards conns, the connections
	// being served, so that the stop reaches every one of them.
	closing atomic.Bool
	mu      sync.Mutex
	conns   map[*net.UnixConn]struct{}
	wg      sync.WaitGroup
}

// New returns a server that hands connections to handler.
func New(handler Handler, limits Limits, log *slog.Logger) *Server {
	return &Server{handler: handler, limits: limits, log: log, conns: map[*net.UnixConn]struct{}{}}
}

// Serve accepts connections on l until ctx is done or l is closed, each
// served in a goroutine of its own; the runtime multiplexes them on epoll,
// so thousands of idle shims cost memory, not threads. A failed accept
// (EMFILE: some caller holds many connections) pauses the loop; it never
// ends it. When the loop ends, Serve closes l, stops the server (Stop) and
// returns once every connection is done.
func (s *Server) Serve(ctx context.Context, l *net.UnixListener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	acceptloop.Run("shim connection", s.log, l.AcceptUnix, func(conn *net.UnixConn) {
		if !s.track(conn) {
			conn.Close()
			return
		}
		go func() {
			defer s.untrack(conn)
			s.serveConn(conn)
		}()
	})
	l.Close()
	s.Stop()
	return nil
}

// ServeConn serves one connection in the caller's goroutine until it
// ends, counted with the others (Stop waits for it). A connection given
// after Stop is closed at once.
func (s *Server) ServeConn(conn *net.UnixConn) {
	if !s.track(conn) {
		conn.Close()
		return
	}
	defer s.untrack(conn)
	s.serveConn(conn)
}

// Stop ends every connection once the request it is answering, if any, is
// answered, and waits until all are done. Requests not yet read are not
// answered: the shim sees the connection end, as when the router exits.
func (s *Server) Stop() {
	s.mu.Lock()
	s.closing.Store(true)
	for conn := range s.conns {
		conn.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) track(conn *net.UnixConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(conn *net.UnixConn) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	s.wg.Done()
}

// setReadDeadline sets the deadline of the next read, unless the server
// is stopping: then it says to end the connection. Stop sets closing
// before it moves every deadline to the past, and a deadline is set under
// the descriptor's lock, so either Stop's deadline comes after this one
// or closing is seen here.
func (s *Server) setReadDeadline(conn *net.UnixConn, t time.Time) bool {
	conn.SetReadDeadline(t)
	return !s.closing.Load()
}
