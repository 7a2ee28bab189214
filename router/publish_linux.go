package router

import (
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
)

// publishListener answers PUBLISH: the shim saw the app accept from the
// listener (or still sees it) and asks for the directory entry with its
// host address. A pending entry gets it, and one the sweep dropped is
// added again; the reply then waits until the peers have it, as LISTEN's
// does. The kernel vouches for the socket: a listening TCP socket of this
// host's network namespace on the host address (in secure mode, made for
// that overlay listener); the overlay address must be the caller's own.
func (r *Router) publishListener(c *container, payload []byte, host int) (protocol.Message, []int, error) {
	p, err := protocol.DecodePublish(payload)
	if err != nil {
		return protocol.Message{}, nil, refuse(unix.EINVAL, "%v", err)
	}
	if p.Overlay.Addr() != c.Addr || p.Overlay.Port() == 0 {
		return protocol.Message{}, nil, refuse(unix.EPERM, "PUBLISH: %v is not an address of container %s", p.Overlay, c.Name)
	}
	bound, cookie, family, err := r.checkHostListener(host)
	if err != nil {
		return protocol.Message{}, nil, err
	}
	if !r.mode.listenerFor(host, p.Overlay) {
		return protocol.Message{}, nil, refuse(unix.EPERM, "PUBLISH: the host listener was not made for %v", p.Overlay)
	}
	if family != unix.AF_INET6 || !r.plan.Config.HasIPv6() || r.mode.isSecure() {
		p.Flags = 0 // no IPv6 overlay clients here: the shim's flags say what the socket would take
	}
	now := time.Now()
	found, published := r.listeners.seen(cookie, now)
	if !found {
		reusePort, _ := unix.GetsockoptInt(host, unix.SOL_SOCKET, unix.SO_REUSEPORT)
		r.listeners.add(listener{Container: c.Name, Overlay: p.Overlay, Host: bound, Family: family, Flags: p.Flags, HostCookie: cookie, ReusePort: reusePort == 1, Added: now, Seen: now})
		published = true
	}
	if published {
		r.publish()
		r.cluster.WaitPublished(r.listeners.currentVersion())
		r.log.Debug("listener accepted from", "container", c.Name, "overlay", p.Overlay, "host", bound)
	}
	return protocol.Message{Type: protocol.TypeOK}, nil, nil
}

// checkHostListener verifies that fd is a listening TCP socket of the
// router's own network namespace bound to the host address (v4-mapped for
// an AF_INET6 one), and returns that address, the socket's cookie and its
// family.
func (r *Router) checkHostListener(fd int) (bound netip.AddrPort, cookie uint64, family int, err error) {
	if family, err = checkTCPListener(fd); err != nil {
		return bound, 0, 0, refuse(unix.EINVAL, "PUBLISH: %v", err)
	}
	ns, err := socketNetns(fd)
	if err != nil {
		return bound, 0, 0, refuse(unix.EINVAL, "PUBLISH: %v", err)
	}
	own, err := namespaceInode("/proc/self/ns/net")
	if err != nil || ns != own {
		return bound, 0, 0, refuse(unix.EPERM, "PUBLISH: not a socket of the host's network namespace")
	}
	if bound, err = localAddr(fd); err != nil || bound.Addr() != r.self.Underlay {
		return bound, 0, 0, refuse(unix.EPERM, "PUBLISH: not a host listener on %s", r.self.Underlay)
	}
	if cookie, err = socketCookie(fd); err != nil {
		return bound, 0, 0, refuse(unix.EINVAL, "PUBLISH: %v", err)
	}
	return bound, cookie, family, nil
}
