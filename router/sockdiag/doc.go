// Package sockdiag lists the IPv4 TCP sockets of the current network
// namespace through sock_diag (inet_diag), filtered by state in the kernel.
//
// The router sweeps the host namespace every second. A busy host holds
// far more TIME_WAIT sockets than live ones (a connection-rate benchmark
// leaves ~10^5), and a dump of every state costs a visible share of a CPU;
// asking the kernel for the live states only keeps the sweep cheap.
package sockdiag
