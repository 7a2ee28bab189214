// Package router is the per-host Slim daemon. It runs in the host network
// namespace and
//
//   - serves shims on a unix SOCK_SEQPACKET socket (docs/protocol.md §1,
//     package shimserver), identifying each caller from kernel facts: its
//     peer credentials, the network namespace of that process, the
//     container registered for it;
//   - hands out host TCP sockets (pools of unconnected sockets for clients,
//     host listeners standing for containers' overlay listeners);
//   - publishes the directory of accelerated listeners to the shims on its
//     host (package directory) and exchanges it with the other hosts
//     (Cluster; today package peers);
//   - keeps the table of accelerated listeners and connections (package
//     census) and serves them on the control API (DIR/control.sock,
//     docs/control.md, package controlapi).
//
// Run owns every goroutine of these parts and stops them in order;
// docs/architecture.md describes the parts, their interfaces and how a
// request flows through them.
package router
