package router

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"syscall"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/secure"
)

// secureMode is the router's side of secure mode (docs/secure.md): the
// loaded programs, the cgroups, and the policy as the programs have it.
type secureMode struct {
	log      *slog.Logger
	datapath *secure.Datapath
	cgroups  *secure.Cgroups
	pinDir   string
	binary   *trustedBinary // what slim exec and its guard must run
	ports    portRange      // where a pool socket may be bound

	mu         sync.Mutex
	containers map[string]*secure.ContainerGuard // container name -> its policy check
	applied    []appliedRule                     // the rules in the programs, in order

	// life orders marking sockets (read) against the stop (write): once
	// stopped, no socket is marked, so the stop's count of open sockets
	// stays true.
	life    sync.RWMutex
	stopped bool
}

var _ mode = (*secureMode)(nil)

func (s *secureMode) isSecure() bool { return true }

// callerStart reads when the caller started: with its PID, it names the
// process for good (enrolment, checkEnrolled).
func (s *secureMode) callerStart(raw syscall.RawConn, pid int32) (uint64, error) {
	return peerStart(raw, pid)
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
// into its cgroup, loads the programs, puts the policy in force and
// attaches the programs, taking over what an earlier router left (pinned
// maps and links, container checks). Without --secure it does nothing.
//
// A start that fails never removes what it took over: sockets an earlier
// router made stay guarded (only a clean stop that finds none open, or
// `slim router --cleanup`, removes it).
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
	if err := secure.ProbeHelpers(); err != nil {
		return err
	}
	if err := probeSockDestroy(); err != nil {
		return err
	}
	ports, err := r.clientBindPorts()
	if err != nil {
		return err
	}
	bpffs, err := secure.EnsureBPFFS()
	if err != nil {
		return err
	}
	binary, err := newTrustedBinary()
	if err != nil {
		return err
	}
	s := &secureMode{log: r.log, containers: map[string]*secure.ContainerGuard{}, pinDir: secure.PinDir(bpffs, r.secureID()), binary: binary, ports: ports}
	if s.cgroups, err = secure.EnterRouterCgroup(r.secureID()); err != nil {
		return err
	}
	fresh := !secure.Pinned(s.pinDir)
	if s.datapath, err = secure.Load(s.pinDir); err != nil {
		if fresh {
			s.cgroups.Leave() // nothing guarded: remove what this start made
		} else {
			s.cgroups.Release()
		}
		return err
	}
	if len(s.datapath.Replaced) > 0 {
		r.log.Warn("secure mode: replaced pinned maps of another layout (another slim version); sockets made before lose their state in them", "maps", s.datapath.Replaced)
	}
	if err := r.takeOver(s); err != nil {
		if s.datapath.Adopted {
			s.abandon("start failed")
		} else {
			s.remove() // all of it made by this start: nothing to guard yet
		}
		return err
	}
	r.mode = s
	r.log.Info("secure mode on", "cgroup", s.cgroups.RouterDir(), "bpffs", s.pinDir, "took_over", s.datapath.Adopted)
	return nil
}

// takeOver puts the policy in force, configures and attaches the programs
// and re-attaches the checks of containers enrolled by an earlier router.
// The router's mode stays plain until it succeeds.
func (r *Router) takeOver(s *secureMode) error {
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	prepared, err := r.compilePolicy(r.policy)
	if err == nil {
		prepared.list, err = s.prepareRules(prepared.rules)
	}
	if err == nil {
		err = s.install(prepared)
	}
	if err == nil {
		err = r.configureSecure(s)
	}
	if err == nil {
		err = s.revoke(prepared.rules)
	}
	return err
}

// configureSecure writes the settings, attaches the router's programs and
// guards the containers whose cgroups an earlier router made.
func (r *Router) configureSecure(s *secureMode) error {
	k0, k1 := r.clusterKey.SynKey()
	settings := secure.Settings{RouterCgroup: s.cgroups.RouterID, K0: k0, K1: k1, Overlay: r.plan.Config.CIDR, OverlayIPv6: r.plan.Config.IPv6,
		BindPortMin: s.ports.lo, BindPortMax: s.ports.hi}
	if err := s.datapath.Configure(settings); err != nil {
		return err
	}
	if err := s.datapath.AttachRouter(s.cgroups.RouterDir(), s.cgroups.RouterID); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range r.containers.list() {
		if dir := s.cgroups.ContainerDir(c.Name); dirExists(dir) {
			if err := s.guardContainer(c, dir); err != nil {
				r.log.Warn("secure mode: container cgroup", "container", c.Name, "err", err)
			}
		}
	}
	return nil
}

// mark records what a host socket the router made is for, unless the
// router is stopping (then the socket is refused).
func (s *secureMode) mark(fd int, kind uint32, owner netip.AddrPort) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.stopped {
		return errors.New("secure mode: the router is stopping")
	}
	return s.datapath.SetSocket(fd, kind, owner)
}

// markPool marks a batch of pool sockets as the container's.
func (s *secureMode) markPool(c *container, fds []int, cookies []uint64) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.stopped {
		return errors.New("secure mode: the router is stopping")
	}
	return s.datapath.SetPoolSockets(fds, cookies, c.Addr)
}

// markListener marks a host listener (before it listens) as standing for
// an overlay listener; what it accepts inherits the mark.
func (s *secureMode) markListener(fd int, overlay netip.AddrPort) error {
	return s.mark(fd, secure.KindListener, overlay)
}

// listenerFor says whether the programs marked host listener fd as
// standing for overlay.
func (s *secureMode) listenerFor(fd int, overlay netip.AddrPort) bool {
	marked, ok := s.datapath.ListenerOf(fd)
	return ok && marked == overlay
}

// setRoutes gives the connect program every accelerated listener.
func (s *secureMode) setRoutes(entries []directory.Entry) {
	routes := make(map[netip.AddrPort]netip.AddrPort, len(entries))
	for _, e := range entries {
		if e.Host.Port() != 0 { // pending: nobody connects there yet
			routes[e.Overlay] = e.Host
		}
	}
	if err := s.datapath.SetRoutes(routes); err != nil {
		s.log.Error("secure mode: routes", "err", err)
	}
}

// shimEntries is the directory as shims see it. In secure mode no host
// address reaches a container: an entry says only that the overlay
// listener is accelerated (its host address is the overlay address), and
// the connect program puts the real one in.
func (s *secureMode) shimEntries(entries []directory.Entry) []directory.Entry {
	out := make([]directory.Entry, len(entries))
	for i, e := range entries {
		out[i] = directory.Entry{Overlay: e.Overlay, Host: e.Overlay}
		if e.Host.Port() == 0 { // pending (docs/protocol.md §2)
			out[i].Host = netip.AddrPortFrom(e.Overlay.Addr(), 0)
		}
	}
	return out
}

// shimHostAddr is the host address a LISTEN_OK may tell a container: in
// secure mode, none but the overlay address.
func (s *secureMode) shimHostAddr(overlay, _ netip.AddrPort) netip.AddrPort { return overlay }

// events is what the programs counted, for the control API.
func (s *secureMode) events() *control.SecureEvents {
	counts, err := s.datapath.Counters()
	if err != nil {
		return nil
	}
	events := control.SecureEvents(counts)
	return &events
}
