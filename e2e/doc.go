// Package e2e holds Slim's end-to-end tests: real programs run under
// `slim exec` in the containers of a lab, across hosts and on one host,
// checked for correct socket semantics and for real acceleration (the
// connection's sockets live in the host namespaces, and the VXLAN devices
// carry none of its bytes). The tests need root; they skip without it.
package e2e
