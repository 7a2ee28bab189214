package router

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/protocol"
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

// secureID names this router's cgroups and pins: routers with different
// directories (the lab runs several) never share them.
func (r *Router) secureID() string {
	sum := sha256.Sum256([]byte(r.config.Dir))
	return "r" + hex.EncodeToString(sum[:6])
}

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
	bpffs, err := secure.EnsureBPFFS()
	if err != nil {
		return err
	}
	s := &secureMode{containers: map[string]link.Link{}}
	if s.cgroups, err = secure.EnterRouterCgroup(r.secureID()); err != nil {
		return err
	}
	if s.datapath, err = secure.Load(filepath.Join(bpffs, "slim", r.secureID())); err != nil {
		s.cgroups.Leave()
		return err
	}
	r.secure = s
	k0, k1 := r.clusterKey.SynKey()
	settings := secure.Settings{RouterCgroup: s.cgroups.RouterID, K0: k0, K1: k1, Overlay: r.plan.Config.CIDR}
	if err := s.datapath.Configure(settings); err != nil {
		r.stopSecure()
		return err
	}
	if err := s.datapath.AttachRouter(s.cgroups.RouterDir()); err != nil {
		r.stopSecure()
		return err
	}
	r.policyMu.Lock()
	err = r.policyChanged()
	r.policyMu.Unlock()
	if err != nil {
		r.stopSecure()
		return err
	}
	r.log.Info("secure mode on", "cgroup", s.cgroups.RouterDir(), "bpffs", filepath.Join(bpffs, "slim", r.secureID()))
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
			missing = append(missing, fmt.Sprintf("%s (%s; needed to %s)", f.Name, why, f.Use))
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
	if _, ok := s.containers[c.Name]; !ok {
		l, err := s.datapath.AttachContainer(dir)
		if err != nil {
			return protocol.Message{}, refuse(unix.EPERM, "%v", err)
		}
		s.containers[c.Name] = l
	}
	id, err := secure.CgroupID(dir)
	if err == nil {
		err = s.datapath.SetContainer(id, c.Addr)
	}
	if err != nil {
		return protocol.Message{}, refuse(unix.EPERM, "%v", err)
	}
	r.log.Debug("enrolled", "container", c.Name, "pid", pid, "cgroup", dir)
	return ok, nil
}
