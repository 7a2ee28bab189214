package router

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// inheritedOption is a socket option an application may set on its
// listener and expect its accepted connections to carry.
type inheritedOption struct {
	level, name int
	what        string
	// doubled options read back twice what was set (buffer sizes).
	doubled bool
}

var inheritedOptions = []inheritedOption{
	{unix.SOL_SOCKET, unix.SO_KEEPALIVE, "SO_KEEPALIVE", false},
	{unix.SOL_SOCKET, unix.SO_RCVBUF, "SO_RCVBUF", true},
	{unix.SOL_SOCKET, unix.SO_SNDBUF, "SO_SNDBUF", true},
	{unix.SOL_SOCKET, unix.SO_PRIORITY, "SO_PRIORITY", false},
	{unix.IPPROTO_TCP, unix.TCP_NODELAY, "TCP_NODELAY", false},
	{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, "TCP_KEEPIDLE", false},
	{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, "TCP_KEEPINTVL", false},
	{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, "TCP_KEEPCNT", false},
	{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, "TCP_USER_TIMEOUT", false},
	{unix.IPPROTO_IP, unix.IP_TOS, "IP_TOS", false},
}

// inheritedOptions6 are an AF_INET6 listener's own options, copied to an
// AF_INET6 host listener.
var inheritedOptions6 = []inheritedOption{
	{unix.IPPROTO_IPV6, unix.IPV6_TCLASS, "IPV6_TCLASS", false},
}

// copyListenerOptions gives the host listener the options the application
// set on its own listener: those whose value differs from a new socket's.
// Untouched options stay at their defaults, so buffer autotuning is not
// turned off by copying a default size.
func copyListenerOptions(app, host, family int) error {
	fresh, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fresh)
	options := inheritedOptions
	if family == unix.AF_INET6 {
		options = append(slices.Clip(options), inheritedOptions6...)
	}
	for _, o := range options {
		v, err := unix.GetsockoptInt(app, o.level, o.name)
		if err != nil {
			continue
		}
		if def, err := unix.GetsockoptInt(fresh, o.level, o.name); err == nil && def == v {
			continue
		}
		if o.doubled {
			v /= 2
		}
		if err := unix.SetsockoptInt(host, o.level, o.name, v); err != nil {
			return fmt.Errorf("copying %s: %w", o.what, err)
		}
	}
	if l, err := unix.GetsockoptLinger(app, unix.SOL_SOCKET, unix.SO_LINGER); err == nil && l.Onoff != 0 {
		if err := unix.SetsockoptLinger(host, unix.SOL_SOCKET, unix.SO_LINGER, l); err != nil {
			return fmt.Errorf("copying SO_LINGER: %w", err)
		}
	}
	if cc, err := unix.GetsockoptString(app, unix.IPPROTO_TCP, unix.TCP_CONGESTION); err == nil {
		if def, _ := unix.GetsockoptString(fresh, unix.IPPROTO_TCP, unix.TCP_CONGESTION); cc != def {
			if err := unix.SetsockoptString(host, unix.IPPROTO_TCP, unix.TCP_CONGESTION, cc); err != nil {
				return fmt.Errorf("copying TCP_CONGESTION %q: %w", cc, err)
			}
		}
	}
	return nil
}
