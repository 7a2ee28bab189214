package router

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/router/sockdiag"
	"github.com/slimnet/slim/secure"
)

// secureMode is the router's side of secure mode (docs/secure.md): the
// loaded programs, the cgroups, and the policy as the programs have it.
type secureMode struct {
	datapath *secure.Datapath
	cgroups  *secure.Cgroups

	mu         sync.Mutex
	containers map[string]link.Link // container name -> its policy check
	applied    []appliedRule        // the rules in the programs, in order
}

// appliedRule is a rule as loaded, with the hits counted before the
// programs' counters were last zeroed.
type appliedRule struct {
	text  string
	carry uint64
}

// secureID names this router's cgroups and pins.
func (r *Router) secureID() string { return secure.RouterID(r.config.Dir) }

// startSecure checks the kernel, mounts bpffs if needed, moves the router
// into its cgroup and loads and attaches the programs. Without --secure it
// does nothing.
func (r *Router) startSecure() error {
	if !r.config.Secure {
		return nil
	}
	if r.clusterKey == nil {
		return errors.New("secure mode needs a cluster key (--key-file)")
	}
	if err := secureModeReady(secure.Probe()); err != nil {
		return err
	}
	if err := probeSockDestroy(); err != nil {
		return err
	}
	bpffs, err := secure.EnsureBPFFS()
	if err != nil {
		return err
	}
	s := &secureMode{containers: map[string]link.Link{}}
	if s.cgroups, err = secure.EnterRouterCgroup(r.secureID()); err != nil {
		return err
	}
	if s.datapath, err = secure.Load(secure.PinDir(bpffs, r.secureID())); err != nil {
		s.cgroups.Leave()
		return err
	}
	r.secure = s
	k0, k1 := r.clusterKey.SynKey()
	settings := secure.Settings{RouterCgroup: s.cgroups.RouterID, K0: k0, K1: k1, Overlay: r.plan.Config.CIDR,
		BindPortMin: ephemeralPortMin()}
	if err := s.datapath.Configure(settings); err != nil {
		r.stopSecure()
		return err
	}
	if err := s.datapath.AttachRouter(s.cgroups.RouterDir()); err != nil {
		r.stopSecure()
		return err
	}
	// Containers enrolled by a router that died: their check was
	// detached with its links, and is back before anything else.
	for _, c := range r.containers {
		if dir := s.cgroups.ContainerDir(c.Name); dirExists(dir) {
			if err := s.guardContainer(c, dir); err != nil {
				r.log.Warn("secure mode: container cgroup", "container", c.Name, "err", err)
			}
		}
	}
	r.policyMu.Lock()
	err = r.policyChanged()
	r.policyMu.Unlock()
	if err != nil {
		r.stopSecure()
		return err
	}
	r.log.Info("secure mode on", "cgroup", s.cgroups.RouterDir(), "bpffs", secure.PinDir(bpffs, r.secureID()))
	return nil
}

// secureModeReady names every missing feature secure mode needs.
func secureModeReady(fs secure.Features) error {
	var missing []string
	for _, f := range fs.All() {
		if f.Required && !f.Present {
			why := f.State()
			if f.Err != nil {
				why = f.Err.Error()
			}
			missing = append(missing, fmt.Sprintf("%s (%s; secure mode uses it to %s)", f.Name, why, f.Use))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("secure mode cannot start: this kernel lacks %s", strings.Join(missing, ", "))
	}
	return nil
}

// stopSecure detaches every program, removes every pin and cgroup it can:
// after a clean stop nothing of secure mode is left in the kernel.
func (r *Router) stopSecure() {
	s := r.secure
	if s == nil {
		return
	}
	r.secure = nil
	s.mu.Lock()
	for name, l := range s.containers {
		l.Unpin()
		l.Close()
		delete(s.containers, name)
	}
	s.mu.Unlock()
	if err := s.datapath.Remove(); err != nil {
		r.log.Warn("secure mode: removing programs and pins", "err", err)
	}
	if err := s.cgroups.Leave(); err != nil {
		r.log.Warn("secure mode: removing cgroups", "err", err)
	}
}

// securePoolSocket marks a pool socket as the container's.
func (r *Router) securePoolSocket(c *container, fd int) error {
	if r.secure == nil {
		return nil
	}
	return r.secure.datapath.SetSocket(fd, secure.KindPool, netip.AddrPortFrom(c.Addr, 0))
}

// secureListener marks a host listener (before it listens) as standing for
// an overlay listener; what it accepts inherits the mark.
func (r *Router) secureListener(fd int, overlay netip.AddrPort) error {
	if r.secure == nil {
		return nil
	}
	return r.secure.datapath.SetSocket(fd, secure.KindListener, overlay)
}

// secureRoutes gives the connect program every accelerated listener.
func (r *Router) secureRoutes(entries []directory.Entry) {
	if r.secure == nil {
		return
	}
	routes := make(map[netip.AddrPort]netip.AddrPort, len(entries))
	for _, e := range entries {
		routes[e.Overlay] = e.Host
	}
	if err := r.secure.datapath.SetRoutes(routes); err != nil {
		r.log.Error("secure mode: routes", "err", err)
	}
}

// shimEntries is the directory as shims see it. In secure mode no host
// address reaches a container: an entry says only that the overlay
// listener is accelerated (its host address is the overlay address), and
// the connect program puts the real one in.
func (r *Router) shimEntries(entries []directory.Entry) []directory.Entry {
	if r.secure == nil {
		return entries
	}
	out := make([]directory.Entry, len(entries))
	for i, e := range entries {
		out[i] = directory.Entry{Overlay: e.Overlay, Host: e.Overlay}
	}
	return out
}

// shimHostAddr is the host address a LISTEN_OK may tell a container.
func (r *Router) shimHostAddr(overlay, host netip.AddrPort) netip.AddrPort {
	if r.secure != nil {
		return overlay
	}
	return host
}

// enroll puts a process of a container (`slim exec`, before it starts the
// program) into the container's cgroup, where the policy also covers its
// connections over the overlay. Outside secure mode there is nothing to do.
func (r *Router) enroll(c *container, pid int, req request) (protocol.Message, error) {
	if len(req.Payload) != 0 || len(req.fds) != 0 {
		return protocol.Message{}, refuse(unix.EINVAL, "ENROLL carries nothing")
	}
	ok := protocol.Message{Type: protocol.TypeOK}
	s := r.secure
	if s == nil {
		return ok, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir, _, err := s.cgroups.EnterContainer(c.Name, pid)
	if err != nil {
		return protocol.Message{}, refuse(unix.EPERM, "%v", err)
	}
	if err := s.guardContainer(c, dir); err != nil {
		return protocol.Message{}, refuse(unix.EPERM, "%v", err)
	}
	r.log.Debug("enrolled", "container", c.Name, "pid", pid, "cgroup", dir)
	return ok, nil
}

// guardContainer attaches the overlay policy check to a container's
// cgroup, once, and tells it the container's address.
func (s *secureMode) guardContainer(c *container, dir string) error {
	if _, ok := s.containers[c.Name]; !ok {
		l, err := s.datapath.AttachContainer(c.Name, dir)
		if err != nil {
			return err
		}
		s.containers[c.Name] = l
	}
	id, err := secure.CgroupID(dir)
	if err != nil {
		return err
	}
	return s.datapath.SetContainer(id, c.Addr)
}

func dirExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// ephemeralPortMin is the first port of this namespace's ephemeral range
// (net.ipv4.ip_local_port_range), or 0 (no bind allowed) if unreadable.
func ephemeralPortMin() uint16 {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return 0
	}
	v, err := strconv.ParseUint(fields[0], 10, 16)
	if err != nil {
		return 0
	}
	return uint16(v)
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
