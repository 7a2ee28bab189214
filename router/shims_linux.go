package router

import (
	"context"
	"net"

	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/router/shimserver"
)

// The router's side of the shim server (package shimserver): who each
// caller is, what its connection counts against, and what its requests
// get (handlers_linux.go).

// request is one decoded shim request with the descriptors it carried.
type request = shimserver.Request

// newShimServer is the shim server of r, with its limits.
func (r *Router) newShimServer() *shimserver.Server {
	l := r.limits()
	return shimserver.New(shimHandler{r}, shimserver.Limits{Containers: l.ShimConnections, Strangers: l.StrangerConnections}, r.log)
}

// serveShims serves the shim socket until ctx is done, then lets the
// requests in progress finish and ends every connection.
func (r *Router) serveShims(ctx context.Context) error {
	return r.shims.Serve(ctx, r.socket)
}

// shimHandler identifies the callers of new shim connections.
type shimHandler struct{ router *Router }

// Open asks who connected (r.callers: the kernel, in tests a fake).
func (h shimHandler) Open(conn *net.UnixConn) shimserver.Session {
	who, err := h.router.callers.identify(conn)
	return &shimSession{router: h.router, who: who, idErr: err}
}

// shimSession answers the requests of one caller.
type shimSession struct {
	router *Router
	who    caller
	idErr  error // why the caller could not be identified
	ahead  poolAhead
}

// Owner is what the connection counts against: the caller's container,
// or its user (unknownUID if the kernel could not tell).
func (s *shimSession) Owner() shimserver.Owner { return ownerOf(s.who, s.idErr) }

// Serve runs one request (dispatch).
func (s *shimSession) Serve(req request) (*protocol.Message, []int) {
	return s.router.dispatch(s.who, s.idErr, req, &s.ahead)
}

// Answered makes the pool sockets the connection's next POOL will take,
// once the answer to this one is sent (poolahead_linux.go).
func (s *shimSession) Answered(req request) {
	if req.Type == protocol.TypePool && s.idErr == nil && s.who.Container != nil {
		s.router.prepareAhead(s.who.Container, &s.ahead)
	}
}

// End closes the sockets made ahead for the connection.
func (s *shimSession) End() {
	if s.who.Container != nil {
		s.ahead.end(s.who.Container)
	}
}

func ownerOf(who caller, idErr error) shimserver.Owner {
	if idErr == nil && who.Container != nil {
		return shimserver.Owner{Container: who.Container.Name}
	}
	if who.PID == 0 {
		return shimserver.Owner{UID: shimserver.UnknownUID}
	}
	return shimserver.Owner{UID: who.UID}
}
