// Package census knows the accelerated connections of a host without a
// message on the data path (docs/control.md): the router made every pool
// socket (known by cookie) and every host listener (by address), so a
// sock_diag sweep of the host namespace finds their connections, with
// tcp_info counters. It keeps
//
//   - the connection table (Census): pool sockets handed out, the
//     connections of the last sweep, and the CLIENTS lists that tell a
//     server which container of a peer host its client is
//     (docs/protocol.md §5);
//   - what the shims report (ShimStats), bounded and attributed;
//   - the periodic sweep (Sweeper), which also drops the listeners whose
//     host socket is gone and has each container's pool sockets counted.
package census
