// Package lab builds a multi-host Slim test bed out of network namespaces.
//
// A lab named NAME is a wire namespace NAME-wire holding a bridge, N host
// namespaces NAME-h1 … NAME-hN joined to that bridge by veth pairs, and M
// container namespaces NAME-hI-cJ per host attached to their host's overlay.
// Wire addresses come from 198.18.0.0/16 and overlay addresses from
// 198.19.0.0/16 (RFC 2544 benchmarking space); nothing is attached to the
// machine's own namespace or interfaces and no default route is added.
//
// Up either builds the whole lab or removes what it made; Down removes every
// namespace carrying the lab's name and the processes running in them, so it
// also cleans up after a crashed Up.
package lab
