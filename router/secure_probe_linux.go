package router

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/sockdiag"
	"github.com/slimnet/slim/secure"
)

// secureModeReady names every missing feature secure mode needs.
func secureModeReady(fs secure.Features) error {
	var missing []string
	for _, f := range fs.Missing() {
		why := f.State()
		if f.Err != nil {
			why = f.Err.Error()
		}
		missing = append(missing, fmt.Sprintf("%s (%s; secure mode uses it to %s)", f.Name, why, f.Use))
	}
	if len(missing) > 0 {
		return fmt.Errorf("secure mode cannot start: this kernel lacks %s", strings.Join(missing, ", "))
	}
	return nil
}

// probeSockDestroy checks that the kernel can abort a socket through
// sock_diag (CONFIG_INET_DIAG_DESTROY), which revocation needs: it makes
// a listener on the loopback and destroys it.
func probeSockDestroy() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("secure mode: probing SOCK_DESTROY: %w", err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		return fmt.Errorf("secure mode: probing SOCK_DESTROY: %w", err)
	}
	local, err := localAddr(fd)
	if err != nil {
		return err
	}
	cookie, err := socketCookie(fd)
	if err != nil {
		return err
	}
	s := sockdiag.Socket{Cookie: cookie, Local: local, Remote: netip.AddrPortFrom(netip.IPv4Unspecified(), 0)}
	if err := sockdiag.Destroy(s); err != nil {
		return fmt.Errorf("secure mode cannot start: this kernel cannot destroy sockets through sock_diag (CONFIG_INET_DIAG_DESTROY), which revoking connections needs: %w", err)
	}
	return nil
}

// clientBindPorts reads the host's ephemeral and reserved ports: where a
// container may bind a pool socket (clientBindPorts in secure_ports.go),
// the router's own TCP ports left out.
func (r *Router) clientBindPorts() (portRange, error) {
	const sysctl = "/proc/sys/net/ipv4/"
	local, err := os.ReadFile(sysctl + "ip_local_port_range")
	if err != nil {
		return portRange{}, fmt.Errorf("secure mode: %w", err)
	}
	reserved, err := os.ReadFile(sysctl + "ip_local_reserved_ports")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return portRange{}, fmt.Errorf("secure mode: %w", err)
	}
	own := []uint16{r.config.PeerPort}
	if _, port, err := net.SplitHostPort(r.config.MetricsAddr); err == nil {
		if p, err := strconv.ParseUint(port, 10, 16); err == nil {
			own = append(own, uint16(p))
		}
	}
	ports, err := clientBindPorts(string(local), string(reserved), own...)
	if err != nil {
		return portRange{}, fmt.Errorf("secure mode: %w", err)
	}
	r.log.Debug("secure mode: pool sockets may be bound to", "ports", fmt.Sprintf("%d-%d", ports.lo, ports.hi))
	return ports, nil
}
