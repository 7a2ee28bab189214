// Package peers is the directory exchange between the routers of a
// cluster whose configuration lists every host (docs/protocol.md §5): a
// full mesh in which each router keeps a push connection to every peer,
// sends it this host's listeners on every change and every few seconds
// (DIRECTORY), and the client ends of this host's connections to it
// (CLIENTS); each peer publishes what it gets to its shims and says so
// (DIRECTORY_ACK), so that a listen() returns once the peers' clients
// can find the listener. With a cluster key every frame is authenticated
// (auth.go); liveness comes from TCP keepalives, a user timeout and the
// acknowledgements (live_linux.go).
//
// An Exchange owns every goroutine it starts: push sessions, their
// acknowledgement readers, and the connections peers push on. What it
// carries comes from and goes to a Directory and the census's Clients,
// both small interfaces, so it is tested in memory over loopback TCP.
package peers
