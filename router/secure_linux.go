package router

import (
	"errors"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf/link"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/directory"
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
		BindPortMin: clientBindPortMin}
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

// secureListenerFor says whether a host listener was made for the overlay
// listener a shim names (PUBLISH): always in plain mode.
func (r *Router) secureListenerFor(fd int, overlay netip.AddrPort) bool {
	if r.secure == nil {
		return true
	}
	marked, ok := r.secure.datapath.ListenerOf(fd)
	return ok && marked == overlay
}

// secureRoutes gives the connect program every accelerated listener.
func (r *Router) secureRoutes(entries []directory.Entry) {
	if r.secure == nil {
		return
	}
	routes := make(map[netip.AddrPort]netip.AddrPort, len(entries))
	for _, e := range entries {
		if e.Host.Port() != 0 { // pending: nobody connects there yet
			routes[e.Overlay] = e.Host
		}
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
		if e.Host.Port() == 0 { // pending (docs/protocol.md §2)
			out[i].Host = netip.AddrPortFrom(e.Overlay.Addr(), 0)
		}
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

// secureEvents is what the programs counted, for the control API; nil
// outside secure mode.
func (r *Router) secureEvents() *control.SecureEvents {
	if r.secure == nil {
		return nil
	}
	counts, err := r.secure.datapath.Counters()
	if err != nil {
		return nil
	}
	events := control.SecureEvents(counts)
	return &events
}
