// Package controlapi serves a router's control API (docs/control.md) on
// DIR/control.sock, root's only unless a group is given, and, if asked,
// Prometheus text metrics over HTTP. What it serves comes from the
// router: a control.Server with the router as its Source (a snapshot of
// every part) and its policy and other handlers.
package controlapi
