package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slimnet/slim/internal/acceptloop"
	"github.com/slimnet/slim/internal/strictjson"
)

// Limits of the server, so that no client can hold it up.
const (
	// MaxRequestLine bounds a request line; a longer one ends the session.
	MaxRequestLine = 64 << 10
	// WriteTimeout bounds how long a reply may wait for a client that does
	// not read; the client is then dropped.
	WriteTimeout = 2 * time.Second
	// MaxClients bounds the concurrent sessions of users other than root,
	// all together; more are told so and closed.
	MaxClients = 64
	// MaxClientsPerUser bounds the concurrent sessions of one user other
	// than root, so that one user cannot take every session.
	MaxClientsPerUser = 8
	// MaxRootClients bounds root's concurrent sessions, counted apart from
	// everyone else's: other users' sessions never lock root out.
	MaxRootClients = 64
	// MaxConnections bounds the connections in one snapshot.
	MaxConnections = 10000
	// IdleTimeout drops a client that sends no request for this long
	// (a watching client is not idle). Every client of this API asks at
	// once; an idle session only holds a place.
	IdleTimeout = 10 * time.Second
)

// Source gives the server the router's current state.
type Source interface {
	Snapshot() Snapshot
}

// SourceFunc adapts a function to Source.
type SourceFunc func() Snapshot

// Snapshot calls f.
func (f SourceFunc) Snapshot() Snapshot { return f() }

// PolicyHandler serves the policy operations. Positions are 1-based.
// Each returns the rules as they are after the operation; on error the
// rules may be nil, or the rules as they are if the change was kept
// anyway. Error texts go to the client as they are.
type PolicyHandler interface {
	ListPolicy() ([]PolicyRule, error)
	// AddPolicy inserts a rule given in text form at position (0: at the
	// end) and returns the position it got.
	AddPolicy(rule string, position int) (int, []PolicyRule, error)
	DeletePolicy(position int) ([]PolicyRule, error)
}

// ContainerHandler serves the container operations. Error texts go to
// the client as they are.
type ContainerHandler interface {
	// AddContainer registers a container and returns it as registered.
	// Registering the same container again (same name, namespace and
	// address) succeeds.
	AddContainer(spec ContainerSpec) (ContainerSpec, error)
	// DeleteContainer unregisters a container and resets its
	// accelerated connections, returning how many. A name that is not
	// registered succeeds with 0.
	DeleteContainer(name string) (int, error)
}

// Server serves the control API on a listener.
type Server struct {
	Source Source
	// Policy serves the policy operations; nil refuses them.
	Policy PolicyHandler
	// Containers serves the container operations; nil refuses them.
	Containers ContainerHandler
	Log        *slog.Logger

	mu       sync.Mutex
	sessions map[net.Conn]sessionOwner
	wg       sync.WaitGroup
}

// sessionOwner is who opened a session: root or another user, by uid
// (SO_PEERCRED); a client whose uid the kernel cannot tell counts as a
// user other than root.
type sessionOwner struct {
	uid  uint32
	root bool
}

// Serve accepts clients until l is closed or ctx is done, then closes
// every session and returns.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.mu.Lock()
	s.sessions = map[net.Conn]sessionOwner{}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer s.closeSessions()
	// The loop outlives failed accepts (EMFILE and the like): it ends
	// when the listener is closed, by ctx or by the caller.
	acceptloop.Run("control client", s.logger(), l.Accept, func(conn net.Conn) {
		if refusal := foreignClient(conn); refusal != "" {
			writeReply(conn, errorReply("%s", refusal))
			conn.Close()
			return
		}
		if refusal := s.admit(conn); refusal != "" {
			writeReply(conn, errorReply("%s", refusal))
			conn.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.drop(conn)
			s.serve(ctx, conn)
		}()
	})
	return nil
}

// admit records a new session, or says why it is refused: root has its
// own share of sessions, every other user a small one of the rest.
func (s *Server) admit(conn net.Conn) (refusal string) {
	uid, known := peerUID(conn)
	owner := sessionOwner{uid: uid, root: known && uid == 0}
	s.mu.Lock()
	defer s.mu.Unlock()
	var mine, others int
	for _, o := range s.sessions {
		switch {
		case o == owner:
			mine++
		case !o.root:
			others++
		}
	}
	switch {
	case owner.root && mine >= MaxRootClients:
		return fmt.Sprintf("too many control sessions of root (at most %d)", MaxRootClients)
	case !owner.root && mine >= MaxClientsPerUser:
		return fmt.Sprintf("too many control sessions of uid %d (at most %d per user other than root)", uid, MaxClientsPerUser)
	case !owner.root && mine+others >= MaxClients:
		return fmt.Sprintf("too many control sessions of users other than root (at most %d)", MaxClients)
	}
	s.sessions[conn] = owner
	return ""
}

func (s *Server) drop(conn net.Conn) {
	s.mu.Lock()
	delete(s.sessions, conn)
	s.mu.Unlock()
	conn.Close()
}

func (s *Server) closeSessions() {
	s.mu.Lock()
	for conn := range s.sessions {
		conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// serve answers one client's requests, one line each, until it goes away
// or starts a watch, which lasts until it goes away.
func (s *Server) serve(ctx context.Context, conn net.Conn) {
	defer func() {
		if p := recover(); p != nil {
			s.logger().Error("control session panicked; client dropped", "panic", p)
		}
	}()
	lines := bufio.NewScanner(conn)
	lines.Buffer(make([]byte, 4096), MaxRequestLine)
	for conn.SetReadDeadline(time.Now().Add(IdleTimeout)) == nil && lines.Scan() {
		req, err := ParseRequest(lines.Bytes())
		if err != nil {
			if writeReply(conn, errorReply("%v", err)) != nil {
				return
			}
			continue
		}
		switch req.Op {
		case OpSnapshot:
			if writeReply(conn, s.snapshotReply()) != nil {
				return
			}
		case OpWatch:
			conn.SetReadDeadline(time.Time{})
			s.watch(ctx, conn, lines, req)
			return
		case OpPolicyList, OpPolicyAdd, OpPolicyDel:
			if writeReply(conn, s.policyReply(req)) != nil {
				return
			}
		case OpContainerAdd, OpContainerDel:
			if writeReply(conn, s.containerReply(req)) != nil {
				return
			}
		}
	}
	if errors.Is(lines.Err(), bufio.ErrTooLong) {
		writeReply(conn, errorReply("request line longer than %d bytes", MaxRequestLine))
	}
}

// watch sends a snapshot at once and then every interval (in delta mode,
// what changed since the previous reply) until the client closes its end
// (or sends anything: a watch takes no more requests) or stops reading.
func (s *Server) watch(ctx context.Context, conn net.Conn, lines *bufio.Scanner, req Request) {
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for lines.Scan() {
		}
	}()
	ticker := time.NewTicker(req.Interval())
	defer ticker.Stop()
	var prev *Snapshot
	for {
		reply := s.snapshotReply()
		if req.Changes {
			reply, prev = changesReply(prev, reply.Snapshot), reply.Snapshot
		}
		if err := writeReply(conn, reply); err != nil {
			s.logger().Debug("control watcher dropped", "err", err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-gone:
			return
		case <-ticker.C:
		}
	}
}

func (s *Server) snapshotReply() Reply {
	snap := s.Source.Snapshot()
	snap.normalize()
	return Reply{Version: Version, OK: true, Snapshot: &snap}
}

// changesReply is a delta-mode watch's reply with snapshot next: the
// snapshot itself if it is the first, else the changes since prev.
func changesReply(prev, next *Snapshot) Reply {
	if prev == nil {
		return Reply{Version: Version, OK: true, Snapshot: next}
	}
	changes := Diff(prev, next)
	return Reply{Version: Version, OK: true, Changes: &changes}
}

// policyReply carries out a policy operation.
func (s *Server) policyReply(req Request) Reply {
	if s.Policy == nil {
		return errorReply("this router does not serve policy operations")
	}
	var (
		rules    []PolicyRule
		position int
		err      error
	)
	switch req.Op {
	case OpPolicyList:
		rules, err = s.Policy.ListPolicy()
	case OpPolicyAdd:
		position, rules, err = s.Policy.AddPolicy(req.Rule, req.Position)
	case OpPolicyDel:
		rules, err = s.Policy.DeletePolicy(req.Position)
	}
	if err != nil {
		r := errorReply("%v", err)
		r.Policy = rules
		return r
	}
	if rules == nil {
		rules = []PolicyRule{}
	}
	return Reply{Version: Version, OK: true, Policy: rules, Position: position}
}

// containerReply carries out a container operation.
func (s *Server) containerReply(req Request) Reply {
	if s.Containers == nil {
		return errorReply("this router does not serve container operations")
	}
	if req.Op == OpContainerDel {
		n, err := s.Containers.DeleteContainer(req.Container.Name)
		if err != nil {
			return errorReply("%v", err)
		}
		return Reply{Version: Version, OK: true, ConnectionsReset: n}
	}
	spec, err := s.Containers.AddContainer(*req.Container)
	if err != nil {
		return errorReply("%v", err)
	}
	return Reply{Version: Version, OK: true, Container: &spec}
}

// normalize orders the connection list newest first and bounds it, and
// turns nil lists into empty ones, so that clients always see arrays.
func (snap *Snapshot) normalize() {
	if !slices.IsSortedFunc(snap.Connections, newestFirst) {
		snap.Connections = slices.Clone(snap.Connections)
		slices.SortFunc(snap.Connections, newestFirst)
	}
	if n := len(snap.Connections); n > MaxConnections {
		snap.ConnectionsTruncated += n - MaxConnections
		snap.Connections = snap.Connections[:MaxConnections]
	}
	if snap.Peers == nil {
		snap.Peers = []Peer{}
	}
	if snap.Containers == nil {
		snap.Containers = []Container{}
	}
	if snap.Listeners == nil {
		snap.Listeners = []Listener{}
	}
	if snap.Connections == nil {
		snap.Connections = []Connection{}
	}
	if snap.Policy == nil {
		snap.Policy = []PolicyRule{}
	}
	if snap.Shims.Fallbacks == nil {
		snap.Shims.Fallbacks = map[string]uint64{}
	}
	if snap.Shims.SetupBuckets == nil {
		snap.Shims.SetupBuckets = []uint64{}
	}
}

func errorReply(format string, args ...any) Reply {
	return Reply{Version: Version, Error: fmt.Sprintf(format, args...)}
}

func writeReply(conn net.Conn, r Reply) error {
	line, err := json.Marshal(r)
	if err != nil {
		line, _ = json.Marshal(errorReply("encoding reply: %v", err))
	}
	conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	_, err = conn.Write(append(line, '\n'))
	return err
}

// ParseRequest decodes and checks one request line.
func ParseRequest(line []byte) (Request, error) {
	var req Request
	if err := strictjson.Unmarshal(line, &req); err != nil {
		return Request{}, fmt.Errorf("malformed request (want one JSON object per line, with the fields of docs/control.md): %v", err)
	}
	if req.Version != Version {
		return Request{}, fmt.Errorf("version %d is not supported; this router speaks version %d", req.Version, Version)
	}
	switch req.Op {
	case OpSnapshot, OpWatch, OpPolicyList:
	case OpPolicyAdd:
		if strings.TrimSpace(req.Rule) == "" {
			return Request{}, fmt.Errorf(`policy_add needs "rule", such as "deny from 198.19.2.0/24 to 198.19.1.0/24 port 5432"`)
		}
		if req.Position < 0 {
			return Request{}, fmt.Errorf(`position %d: positions start at 1 (0 or none appends)`, req.Position)
		}
	case OpPolicyDel:
		if req.Position < 1 {
			return Request{}, fmt.Errorf(`policy_del needs "position", the number of the rule to delete (1 is the first)`)
		}
	case OpContainerAdd:
		if c := req.Container; c == nil || c.Name == "" || c.Netns == "" || c.Addr == "" {
			return Request{}, fmt.Errorf(`container_add needs "container" with "name", "netns" and "addr", such as {"name":"web","netns":"/run/netns/web","addr":"198.19.1.5"}`)
		}
	case OpContainerDel:
		if req.Container == nil || req.Container.Name == "" {
			return Request{}, fmt.Errorf(`container_del needs "container" with "name", such as {"name":"web"}`)
		}
	case "":
		return Request{}, fmt.Errorf(`no "op": want one of %s`, opList())
	default:
		return Request{}, fmt.Errorf("unknown op %q: want one of %s", req.Op, opList())
	}
	if req.IntervalMS < 0 {
		return Request{}, fmt.Errorf("interval_ms %d is negative", req.IntervalMS)
	}
	return req, nil
}

func opList() string {
	quoted := make([]string, len(ops))
	for i, op := range ops {
		quoted[i] = strconv.Quote(op)
	}
	return strings.Join(quoted, ", ")
}

// Interval is a watch's interval: the one asked for, at least MinInterval,
// DefaultInterval if none.
func (r Request) Interval() time.Duration {
	if r.IntervalMS == 0 {
		return DefaultInterval
	}
	return max(time.Duration(r.IntervalMS)*time.Millisecond, MinInterval)
}
