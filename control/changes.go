package control

import (
	"cmp"
	"slices"
	"time"
)

// Changes is a reply of a watch in delta mode ("changes": true) after the
// first: what changed in the router's snapshot since the previous reply.
// The header and totals come every time; connections come only when
// added or changed, keyed by cookie; the other lists come whole, and only
// when they changed.
type Changes struct {
	Time                 time.Time    `json:"time"`
	Router               RouterHealth `json:"router"`
	ConnectionsTruncated int          `json:"connections_truncated,omitempty"`
	Shims                ShimStats    `json:"shims"`
	// Connections are the connections that are new or differ in any
	// field; ConnectionsRemoved the cookies of those no longer listed
	// (closed, or pushed out of the list by MaxConnections).
	Connections        []Connection `json:"connections,omitempty"`
	ConnectionsRemoved []uint64     `json:"connections_removed,omitempty"`
	// The other lists: nil (absent) if unchanged, else the whole new list
	// (an empty array if it became empty).
	Peers      []Peer       `json:"peers,omitzero"`
	Containers []Container  `json:"containers,omitzero"`
	Listeners  []Listener   `json:"listeners,omitzero"`
	Policy     []PolicyRule `json:"policy,omitzero"`
}

// Diff returns the changes that turn prev into next. Both are snapshots
// as the server sends them (normalized: connections newest first, each
// cookie once).
func Diff(prev, next *Snapshot) Changes {
	c := Changes{
		Time: next.Time, Router: next.Router, ConnectionsTruncated: next.ConnectionsTruncated, Shims: next.Shims,
		Peers:      changedList(prev.Peers, next.Peers),
		Containers: changedList(prev.Containers, next.Containers),
		Listeners:  changedList(prev.Listeners, next.Listeners),
		Policy:     changedList(prev.Policy, next.Policy),
	}
	old := make(map[uint64]Connection, len(prev.Connections))
	for _, conn := range prev.Connections {
		old[conn.Cookie] = conn
	}
	for _, conn := range next.Connections {
		if was, ok := old[conn.Cookie]; !ok || was != conn {
			c.Connections = append(c.Connections, conn)
		}
		delete(old, conn.Cookie)
	}
	for cookie := range old {
		c.ConnectionsRemoved = append(c.ConnectionsRemoved, cookie)
	}
	slices.Sort(c.ConnectionsRemoved)
	return c
}

// changedList is nil if next equals prev, else next, never nil.
func changedList[T comparable](prev, next []T) []T {
	if slices.Equal(prev, next) {
		return nil
	}
	if next == nil {
		return []T{}
	}
	return next
}

// Apply updates s, the snapshot of a watch's previous reply, with the
// changes of the next reply: s then is the snapshot that reply stands
// for. Apply replaces s's lists rather than modifying them, so copies of
// s made before it keep theirs.
func (s *Snapshot) Apply(c Changes) {
	s.Time, s.Router, s.ConnectionsTruncated, s.Shims = c.Time, c.Router, c.ConnectionsTruncated, c.Shims
	replaceIfSent(&s.Peers, c.Peers)
	replaceIfSent(&s.Containers, c.Containers)
	replaceIfSent(&s.Listeners, c.Listeners)
	replaceIfSent(&s.Policy, c.Policy)
	if len(c.Connections) > 0 || len(c.ConnectionsRemoved) > 0 {
		s.Connections = applyConnections(s.Connections, c.Connections, c.ConnectionsRemoved)
	}
}

func replaceIfSent[T any](list *[]T, sent []T) {
	if sent != nil {
		*list = sent
	}
}

// applyConnections returns a new list: conns without the removed cookies,
// with the changed connections added or in place of those of the same
// cookie, newest first.
func applyConnections(conns, changed []Connection, removed []uint64) []Connection {
	drop := make(map[uint64]bool, len(removed)+len(changed))
	for _, cookie := range removed {
		drop[cookie] = true
	}
	for _, conn := range changed {
		drop[conn.Cookie] = true
	}
	list := make([]Connection, 0, len(conns)+len(changed))
	for _, conn := range conns {
		if !drop[conn.Cookie] {
			list = append(list, conn)
		}
	}
	list = append(list, changed...)
	slices.SortFunc(list, newestFirst)
	return list
}

// newestFirst is the order of a snapshot's connections: the most recently
// seen first, then by cookie.
func newestFirst(a, b Connection) int {
	if d := b.Since.Compare(a.Since); d != 0 {
		return d
	}
	return cmp.Compare(a.Cookie, b.Cookie)
}
