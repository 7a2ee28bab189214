// Package router is the per-host Slim daemon. It runs in the host network
// namespace and
//
//   - serves shims on a unix SOCK_SEQPACKET socket (docs/protocol.md §1),
//     identifying each caller from kernel facts: its peer credentials, the
//     network namespace of that process, the container registered for it;
//   - hands out host TCP sockets (pools of unconnected sockets for clients,
//     host listeners standing for containers' overlay listeners);
//   - publishes the directory of accelerated listeners to the shims on its
//     host (package directory) and exchanges it with peer routers;
//   - keeps the table of accelerated listeners and connections, and serves
//     them on the control API (DIR/control.sock, docs/control.md): a
//     sock_diag sweep of the host namespace finds the connections of the
//     pool sockets and host listeners it created, with tcp_info counters.
package router
