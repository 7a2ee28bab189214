// Package control is the router's control API: a versioned JSON-lines
// protocol on a local unix stream socket (DIR/control.sock) that serves a
// snapshot of the router and a stream of snapshots ("watch"), or of their
// changes (delta mode: Diff, Snapshot.Apply). The router serves it
// (Server, with the router as its Source); slim top, slim status and
// other tools use it (Client, Watcher). docs/control.md is the normative
// description; the types here follow it.
package control
