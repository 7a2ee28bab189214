package supervise

import (
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// AF_INET6 sockets that carry IPv4 (docs/datapath.md, "AF_INET6 sockets"
// and "The supervised path"): a dual-stack listener (bound to :: without
// IPV6_V6ONLY, or to the container's address v4-mapped) and an AF_INET6
// socket connecting to a v4-mapped overlay address are accelerated like
// AF_INET ones, with AF_INET6 host sockets (the router's AF_INET6 pool and
// host listeners), and the addresses the program reads are v4-mapped.
// What stays IPv6 is left alone: the overlay is IPv4.

// Why an AF_INET6 socket is left alone (the shim's cases, preload/inet6.c).
type v6Case int

const (
	v6Dest   v6Case = iota // a connect to an IPv6 address
	v6Only                 // an IPV6_V6ONLY socket
	v6Bound                // a listener bound to an IPv6 address
	v6Secure               // secure mode's router does not take AF_INET6 host sockets
	v6Cases
)

var v6Why = [v6Cases]string{
	v6Dest:   "a connect to an IPv6 address",
	v6Only:   "an IPV6_V6ONLY socket",
	v6Bound:  "a listener bound to an IPv6 address",
	v6Secure: "an AF_INET6 socket in secure mode (the router does not guard AF_INET6 host sockets)",
}

// ipv6LeftAlone counts an AF_INET6 socket left on the overlay (the "ipv6"
// fallback reason) and says so once per case under SLIM_DEBUG.
func (s *Supervisor) ipv6LeftAlone(fd int, why v6Case) {
	s.stats.fallback(protocol.FallbackIPv6)
	if s.v6Said[why].Swap(true) {
		return
	}
	s.logf("fd %d: %s is not accelerated (the overlay is IPv4); over the overlay (said once)", fd, v6Why[why])
}

// v6Destination says whether a connect of an AF_INET6 socket to dst goes
// to IPv6 itself, and whether that counts as left alone (loopback,
// link-local and :: are not the overlay's business).
func v6Destination(dst netip.AddrPort) (ipv6, counted bool) {
	a := dst.Addr()
	if !a.Is6() {
		return false, false
	}
	return true, !a.IsLoopback() && !a.IsLinkLocalUnicast() && !a.IsUnspecified()
}

// refusedInet6 says whether the router refused AF_INET6 host sockets
// (secure mode, until it guards them: EAFNOSUPPORT).
func refusedInet6(err error) bool {
	var re *routerError
	return errors.As(err, &re) && re.errno == unix.EAFNOSUPPORT
}

// poolOf is the pool of host sockets of the family.
func (s *Supervisor) poolOf(inet6 bool) *pool {
	if inet6 {
		return s.pool6
	}
	return s.pool
}

// defaultsOf is a fresh TCP socket's options, of the family.
func (s *Supervisor) defaultsOf(inet6 bool) optionValues {
	if inet6 {
		return s.defaults6
	}
	return s.defaults
}

// readDefaults reads a fresh TCP socket's options of the family.
func readDefaults(family int) (optionValues, error) {
	probe, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(probe)
	return readOptions(probe), nil
}
