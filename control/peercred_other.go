//go:build !linux

package control

import "net"

// peerUID is unknown outside Linux: every client counts as a user other
// than root.
func peerUID(net.Conn) (uint32, bool) { return 0, false }
