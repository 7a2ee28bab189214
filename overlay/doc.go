// Package overlay is Slim's own VXLAN overlay network: the path for
// addressing, fallback and every packet the connection-level data path does
// not carry.
//
// Each host gets a subnet of the overlay CIDR (see Plan and Allocator), a
// bridge that is the gateway of that subnet, and a VXLAN device. Peers are
// reached by routing: every peer subnet is routed through the VXLAN device to
// the peer's tunnel endpoint, whose MAC address is derived from its subnet, so
// forwarding needs only static neighbour and FDB entries — no multicast, no
// flooding, no learning. Containers attach to the bridge with a veth pair.
//
// The configuration code is portable; the netlink code (Host, Attach) is
// Linux-only and works in whatever network namespace its handle points at, a
// real host or a lab namespace alike.
package overlay
