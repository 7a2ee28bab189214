// Package directory maintains the directory table: the file through which
// a router tells the shims on its host where each accelerated listener is
// (overlay address → host address), with no round trip on connect.
//
// The router rewrites the table in place under a sequence lock; shims map
// it read-only and retry a lookup that raced with a write. The layout is
// described in docs/protocol.md.
package directory
