package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// DefaultSocket is the control socket of a router with the default
// directory.
const DefaultSocket = "/run/slim/control.sock"

// SocketName is the control socket's name in the router's directory.
const SocketName = "control.sock"

// maxReplyLine bounds one reply line a client reads.
const maxReplyLine = 64 << 20

// ReplyTimeout bounds how long a client waits to connect and for a reply
// (for a watch: for each reply, beyond its interval), whatever its context
// allows: a router that accepts no connection or answers nothing (stopped,
// stalled, overloaded) is an error, not a hang.
const ReplyTimeout = 5 * time.Second

// Client is a connection to a router's control socket.
type Client struct {
	path  string
	conn  net.Conn
	lines *bufio.Scanner
	last  *Snapshot // the latest snapshot read, which changes apply to
	// wait bounds the wait for the next reply: ReplyTimeout, plus the
	// interval during a watch.
	wait time.Duration
}

// Dial connects to the control socket at path, within ctx and
// ReplyTimeout.
func Dial(ctx context.Context, path string) (*Client, error) {
	d := net.Dialer{Timeout: ReplyTimeout}
	conn, err := d.DialContext(ctx, "unix", path)
	if errors.Is(err, syscall.EAGAIN) {
		err = fmt.Errorf("%w: its backlog is full, the router accepts no connections (stalled or overloaded)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("router control socket %s: %w", path, err)
	}
	lines := bufio.NewScanner(conn)
	lines.Buffer(make([]byte, 64<<10), maxReplyLine)
	return &Client{path: path, conn: conn, lines: lines, wait: ReplyTimeout}, nil
}

// Close closes the connection (and ends a watch).
func (c *Client) Close() error { return c.conn.Close() }

// Snapshot asks for one snapshot.
func (c *Client) Snapshot(ctx context.Context) (Snapshot, error) {
	if err := c.send(Request{Version: Version, Op: OpSnapshot}); err != nil {
		return Snapshot{}, err
	}
	return c.Next(ctx)
}

// Watch asks for a snapshot every interval; read them with Next.
func (c *Client) Watch(interval time.Duration) error {
	req := Request{Version: Version, Op: OpWatch, IntervalMS: int(interval / time.Millisecond)}
	c.wait = req.Interval() + ReplyTimeout
	return c.send(req)
}

// WatchChanges asks for a snapshot and then, every interval, only what
// changed (delta mode). Next still returns whole snapshots: it applies
// the changes to the previous one. A router that predates delta mode
// sends whole snapshots, which Next returns as they are.
func (c *Client) WatchChanges(interval time.Duration) error {
	c.last = nil
	req := Request{Version: Version, Op: OpWatch, IntervalMS: int(interval / time.Millisecond), Changes: true}
	c.wait = req.Interval() + ReplyTimeout
	return c.send(req)
}

func (c *Client) send(req Request) error {
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	c.conn.SetWriteDeadline(time.Now().Add(WriteTimeout))
	if _, err := c.conn.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("sending %s request: %w", req.Op, err)
	}
	return nil
}

// Next reads the next reply: a snapshot, or changes that it applies to
// the previous snapshot; an error reply becomes an error. Snapshots it
// returns may share lists with earlier ones: do not modify them.
func (c *Client) Next(ctx context.Context) (Snapshot, error) {
	r, err := c.read(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	switch {
	case r.Snapshot != nil:
		c.last = r.Snapshot
	case r.Changes != nil && c.last != nil:
		next := *c.last
		next.Apply(*r.Changes)
		c.last = &next
	case r.Changes != nil:
		return Snapshot{}, errors.New("router sent changes before a snapshot")
	default:
		return Snapshot{}, errors.New("router sent a reply without a snapshot")
	}
	return *c.last, nil
}

// read reads one reply, waiting at most c.wait and as ctx allows; a
// reply of another version or an error reply becomes an error.
func (c *Client) read(ctx context.Context) (Reply, error) {
	if c.wait <= 0 {
		c.wait = ReplyTimeout
	}
	c.conn.SetReadDeadline(time.Now().Add(c.wait))
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Now()) })
	defer stop()
	if !c.lines.Scan() {
		err := c.lines.Err()
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = fmt.Errorf("router control socket %s: no reply within %v: the router is not answering (stopped, stalled or overloaded)", c.path, c.wait)
		case err == nil:
			err = errors.New("router closed the control connection")
		}
		return Reply{}, err
	}
	var r Reply
	if err := json.Unmarshal(c.lines.Bytes(), &r); err != nil {
		return Reply{}, fmt.Errorf("malformed reply from the router: %w", err)
	}
	if r.Version != Version {
		return Reply{}, fmt.Errorf("router replied with version %d, this slim speaks %d", r.Version, Version)
	}
	if !r.OK {
		return r, &ReplyError{Text: r.Error, Policy: r.Policy}
	}
	return r, nil
}

// ReplyError is an error reply from the router.
type ReplyError struct {
	Text string
	// Policy is the rules as they are, when an error reply carries them
	// (a policy change that was saved but not applied).
	Policy []PolicyRule
}

func (e *ReplyError) Error() string { return "router: " + e.Text }

// call sends a request and reads its reply.
func (c *Client) call(ctx context.Context, req Request) (Reply, error) {
	req.Version = Version
	if err := c.send(req); err != nil {
		return Reply{}, err
	}
	return c.read(ctx)
}

// PolicyList asks for the policy rules with their hits.
func (c *Client) PolicyList(ctx context.Context) ([]PolicyRule, error) {
	r, err := c.call(ctx, Request{Op: OpPolicyList})
	return r.Policy, err
}

// PolicyAdd inserts a rule (text form) at a 1-based position (0: at the
// end) and returns the position it got and the rules after the change.
func (c *Client) PolicyAdd(ctx context.Context, rule string, position int) (int, []PolicyRule, error) {
	r, err := c.call(ctx, Request{Op: OpPolicyAdd, Rule: rule, Position: position})
	return r.Position, r.Policy, err
}

// PolicyDel deletes the rule at a 1-based position and returns the rules
// after the change.
func (c *Client) PolicyDel(ctx context.Context, position int) ([]PolicyRule, error) {
	r, err := c.call(ctx, Request{Op: OpPolicyDel, Position: position})
	return r.Policy, err
}

// ContainerAdd registers a container and returns it as the router
// registered it.
func (c *Client) ContainerAdd(ctx context.Context, spec ContainerSpec) (ContainerSpec, error) {
	r, err := c.call(ctx, Request{Op: OpContainerAdd, Container: &spec})
	if err != nil {
		return ContainerSpec{}, err
	}
	if r.Container == nil {
		return ContainerSpec{}, errors.New("router answered container_add without the container")
	}
	return *r.Container, nil
}

// ContainerDel unregisters a container and returns how many of its
// accelerated connections and listeners the router reset.
func (c *Client) ContainerDel(ctx context.Context, name string) (int, error) {
	r, err := c.call(ctx, Request{Op: OpContainerDel, Container: &ContainerSpec{Name: name}})
	return r.ConnectionsReset, err
}

// Fetch dials path, takes one snapshot and closes.
func Fetch(ctx context.Context, path string) (Snapshot, error) {
	c, err := Dial(ctx, path)
	if err != nil {
		return Snapshot{}, err
	}
	defer c.Close()
	return c.Snapshot(ctx)
}

// Watcher streams snapshots from a router, reconnecting after failures.
// It watches in delta mode: the router sends only what changed after the
// first snapshot of each connection, and Next returns whole snapshots.
type Watcher struct {
	Path     string
	Interval time.Duration
	// Retry is the pause before reconnecting after a failure.
	Retry  time.Duration
	client *Client
	failed bool
}

// Next returns the next snapshot, connecting (again) as needed. After a
// failure it waits Retry before trying again, so a loop over Next retries
// at that pace.
func (w *Watcher) Next(ctx context.Context) (Snapshot, error) {
	if w.client == nil {
		if w.failed {
			select {
			case <-ctx.Done():
				return Snapshot{}, ctx.Err()
			case <-time.After(w.Retry):
			}
		}
		c, err := Dial(ctx, w.Path)
		if err == nil {
			err = c.WatchChanges(w.Interval)
			if err != nil {
				c.Close()
			}
		}
		if err != nil {
			w.failed = true
			return Snapshot{}, err
		}
		w.client = c
	}
	snap, err := w.client.Next(ctx)
	if err != nil {
		w.client.Close()
		w.client, w.failed = nil, true
		return Snapshot{}, err
	}
	w.failed = false
	return snap, nil
}

// Close ends the watch.
func (w *Watcher) Close() {
	if w.client != nil {
		w.client.Close()
		w.client = nil
	}
}
