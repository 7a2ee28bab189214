package secure

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	prebuilt "github.com/slimnet/slim/embed"
)

// Datapath is secure mode's programs and maps, loaded into the kernel.
// Its maps are pinned under a bpffs directory, so that a router that
// restarts (after a crash or a clean stop) finds the state of the sockets
// it handed out; its cgroup links are pinned too, so the programs keep
// guarding those sockets while no router runs.
//
// Close lets go of the datapath and leaves the pins: what guards the
// sockets stays. Only Remove takes secure mode out of the kernel.
type Datapath struct {
	objs   prebuilt.SecureObjects
	links  []link.Link
	pinDir string
	// ruleListSpec makes the policy lists slim_policy holds.
	ruleListSpec *ebpf.MapSpec

	// Adopted says that Load found state an earlier router pinned: sockets
	// it handed out may be open, guarded by it.
	Adopted bool
	// Replaced names the pinned maps Load replaced because their layout
	// changed (another slim version): the sockets' state in them is lost.
	Replaced []string

	// routes is what slim_routes holds, as SetRoutes last left it (nil
	// until it read the map once: an adopted map holds an earlier
	// router's routes).
	routes map[prebuilt.SecureSlimAddr]prebuilt.SecureSlimAddr
}

// routerProgram is a program attached to the router's cgroup.
type routerProgram struct {
	name    string
	attach  ebpf.AttachType
	program *ebpf.Program
}

// routerPrograms are the programs attached to the router's cgroup.
func (d *Datapath) routerPrograms() []routerProgram {
	p := d.objs.SecurePrograms
	return []routerProgram{
		{"connect4", ebpf.AttachCGroupInet4Connect, p.SlimConnect4},
		{"bind4", ebpf.AttachCGroupInet4Bind, p.SlimBind4},
		{"getsockname4", ebpf.AttachCgroupInet4GetSockname, p.SlimGetsockname4},
		{"getpeername4", ebpf.AttachCgroupInet4GetPeername, p.SlimGetpeername4},
		{"setsockopt", ebpf.AttachCGroupSetsockopt, p.SlimSetsockopt},
		{"getsockopt", ebpf.AttachCGroupGetsockopt, p.SlimGetsockopt},
		{"sockops", ebpf.AttachCGroupSockOps, p.SlimSockops},
		{"ingress", ebpf.AttachCGroupInetIngress, p.SlimIngress},
		{"sock_release", ebpf.AttachCgroupInetSockRelease, p.SlimSockRelease},
		// AF_INET6 host sockets (v4-mapped): the same guards.
		{"connect6", ebpf.AttachCGroupInet6Connect, p.SlimConnect6},
		{"bind6", ebpf.AttachCGroupInet6Bind, p.SlimBind6},
		{"getsockname6", ebpf.AttachCgroupInet6GetSockname, p.SlimGetsockname6},
		{"getpeername6", ebpf.AttachCgroupInet6GetPeername, p.SlimGetpeername6},
		{"ingress6", ebpf.AttachCGroupInetIngress, p.SlimIngress6},
	}
}

// Load loads the programs, reusing the maps pinned in pinDir (a directory
// on a bpffs, created if needed) by an earlier run. A pinned map whose
// layout changed (a new slim version) is replaced; the others are kept.
// Load attaches nothing and changes no pinned state but the replaced maps.
func Load(pinDir string) (*Datapath, error) {
	if err := os.MkdirAll(pinDir, 0o700); err != nil {
		return nil, fmt.Errorf("secure mode: bpffs directory: %w", err)
	}
	spec, err := prebuilt.LoadSecure()
	if err != nil {
		return nil, fmt.Errorf("secure mode: %w", err)
	}
	sizeRoutes(spec.Maps["slim_routes"])
	d := &Datapath{pinDir: pinDir, Adopted: hasPins(pinDir), ruleListSpec: spec.Maps["slim_policy"].InnerMap.Copy()}
	liveKept := pinnedMapFits(spec.Maps["slim_live"], filepath.Join(pinDir, "slim_live"))
	d.Replaced = removeIncompatiblePins(spec, pinDir)
	if err := d.load(spec); err != nil {
		if !d.Adopted { // what this load pinned guards nothing
			removeMapPins(pinDir)
			os.Remove(pinDir)
			os.Remove(filepath.Dir(pinDir))
		}
		return nil, err
	}
	if d.Adopted && !liveKept {
		// Sockets an older router made were never tracked: a clean stop
		// must not take it that none is left.
		if err := d.missedSockets(); err != nil {
			d.Close()
			return nil, fmt.Errorf("secure mode: %w", err)
		}
	}
	return d, nil
}

func (d *Datapath) load(spec *ebpf.CollectionSpec) error {
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinByName
	}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: d.pinDir}}
	if err := spec.LoadAndAssign(&d.objs, opts); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("secure mode: the kernel's verifier refused a program: %w", err)
		}
		return fmt.Errorf("secure mode: loading programs: %w", err)
	}
	return nil
}

// Pinned says whether a router left programs or maps pinned in dir.
func Pinned(dir string) bool { return hasPins(dir) }

// hasPins says whether an earlier router left anything in dir.
func hasPins(dir string) bool {
	entries, _ := os.ReadDir(dir)
	return len(entries) > 0
}

// pinnedMapFits says whether a map is pinned at path with spec's layout.
func pinnedMapFits(spec *ebpf.MapSpec, path string) bool {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return false
	}
	defer m.Close()
	return spec.Compatible(m) == nil
}

// removeIncompatiblePins removes the pinned maps this version cannot use
// (layout changed, or no longer used) and returns their names.
func removeIncompatiblePins(spec *ebpf.CollectionSpec, dir string) []string {
	entries, _ := os.ReadDir(dir)
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "link_") {
			continue
		}
		if ms, ok := spec.Maps[name]; ok && pinnedMapFits(ms, filepath.Join(dir, name)) {
			continue
		}
		if os.Remove(filepath.Join(dir, name)) == nil {
			removed = append(removed, name)
		}
	}
	return removed
}

func removeMapPins(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "link_") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// AttachRouter attaches the router's programs to its cgroup (cgroupID is
// its id) and pins the links. Links an earlier run pinned on the same
// cgroup are kept and switched to the new programs in one step each
// (BPF_LINK_UPDATE), so the sockets they guard are never unguarded.
func (d *Datapath) AttachRouter(cgroupPath string, cgroupID uint64) error {
	current := map[string]bool{}
	for _, p := range d.routerPrograms() {
		pin := "link_" + p.name
		l, err := d.attach(pin, cgroupPath, cgroupID, p.attach, p.program)
		if err != nil {
			return fmt.Errorf("secure mode: attaching %s to %s: %w", p.name, cgroupPath, err)
		}
		d.links = append(d.links, l)
		current[pin] = true
	}
	// Links of programs this version no longer has.
	entries, _ := os.ReadDir(d.pinDir)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "link_") && !strings.HasPrefix(name, "link_container_") && !current[name] {
			unpinLink(filepath.Join(d.pinDir, name))
		}
	}
	return nil
}

// ContainerGuard is the overlay policy check attached to a container's
// cgroup: the connect4 hook, and the connect6 hook for AF_INET6 sockets
// that connect to v4-mapped overlay addresses.
type ContainerGuard struct{ links []link.Link }

// Unpin removes the pins: the check goes once the guard is closed.
func (g *ContainerGuard) Unpin() {
	for _, l := range g.links {
		l.Unpin()
	}
}

// Close lets go of the links (pinned ones stay attached).
func (g *ContainerGuard) Close() {
	for _, l := range g.links {
		l.Close()
	}
}

// AttachContainer attaches the overlay policy check to a container's
// cgroup, or switches the check an earlier run attached to this program.
// The links are pinned like the router's (link_container_NAME, and
// link_container_NAME@connect6: '@' is in no container name): the check
// stays while no router runs.
func (d *Datapath) AttachContainer(name, cgroupPath string, cgroupID uint64) (*ContainerGuard, error) {
	hooks := []struct {
		pin     string
		attach  ebpf.AttachType
		program *ebpf.Program
	}{
		{"link_container_" + name, ebpf.AttachCGroupInet4Connect, d.objs.SlimContainerConnect4},
		{"link_container_" + name + "@connect6", ebpf.AttachCGroupInet6Connect, d.objs.SlimContainerConnect6},
	}
	g := &ContainerGuard{}
	for _, h := range hooks {
		l, err := d.attach(h.pin, cgroupPath, cgroupID, h.attach, h.program)
		if err != nil {
			g.Unpin()
			g.Close()
			return nil, fmt.Errorf("secure mode: attaching the policy check to %s: %w", cgroupPath, err)
		}
		g.links = append(g.links, l)
	}
	return g, nil
}

// attach makes the link pinned as pin run program on the cgroup: the
// pinned link updated in place if it is live on that cgroup, else a new
// link, pinned in its place.
func (d *Datapath) attach(pin, cgroupPath string, cgroupID uint64, attach ebpf.AttachType, program *ebpf.Program) (link.Link, error) {
	path := filepath.Join(d.pinDir, pin)
	if l, err := adoptLink(path, cgroupID, program); err == nil {
		return l, nil
	}
	unpinLink(path) // gone with its cgroup, or of another one
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: attach, Program: program})
	if err != nil {
		return nil, err
	}
	if err := l.Pin(path); err != nil {
		l.Close()
		return nil, fmt.Errorf("pinning: %w", err)
	}
	return l, nil
}

// adoptLink loads the link pinned at path and, if it is attached to
// cgroup cgroupID, switches it to program.
func adoptLink(path string, cgroupID uint64, program *ebpf.Program) (link.Link, error) {
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return nil, err
	}
	info, err := l.Info()
	if err == nil && (info.Cgroup() == nil || info.Cgroup().CgroupId != cgroupID) {
		err = errors.New("attached elsewhere")
	}
	if err == nil {
		err = l.Update(program)
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func unpinLink(path string) {
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		l.Unpin()
		l.Close()
	}
	os.Remove(path)
}

// detachPinned removes every pinned link, which detaches the programs.
func (d *Datapath) detachPinned() {
	entries, _ := os.ReadDir(d.pinDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "link_") {
			unpinLink(filepath.Join(d.pinDir, e.Name()))
		}
	}
}

// Close lets go of the programs, maps and links, and leaves every pin:
// the programs go on guarding the sockets the router made, and a router
// that starts later takes them over.
func (d *Datapath) Close() {
	for _, l := range d.links {
		l.Close()
	}
	d.links = nil
	d.objs.Close()
}

// Remove detaches every program and removes every pin: secure mode is
// off until a router loads it again, and sockets still open are no longer
// guarded.
func (d *Datapath) Remove() error {
	var errs []error
	for _, l := range d.links {
		if err := l.Unpin(); err != nil {
			errs = append(errs, err)
		}
		l.Close()
	}
	d.links = nil
	d.detachPinned()
	for _, m := range d.maps() {
		if err := m.Unpin(); err != nil {
			errs = append(errs, err)
		}
	}
	d.objs.Close()
	removeMapPins(d.pinDir) // maps of an older version
	if err := os.Remove(d.pinDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	os.Remove(filepath.Dir(d.pinDir)) // <bpffs>/slim, if no other router uses it
	return errors.Join(errs...)
}

func (d *Datapath) maps() []*ebpf.Map {
	m := d.objs.SecureMaps
	return []*ebpf.Map{m.SlimClients, m.SlimContainers, m.SlimCounters, m.SlimHits, m.SlimLive,
		m.SlimLiveLost, m.SlimPolicy, m.SlimRoutes, m.SlimSettings, m.SlimSocks}
}
