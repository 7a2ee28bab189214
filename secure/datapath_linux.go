package secure

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	slimembed "github.com/slimnet/slim/embed"
)

// Datapath is secure mode's programs and maps, loaded into the kernel.
// Its maps are pinned under a bpffs directory, so that a router that
// restarts (even after a crash) finds the state of the sockets it handed
// out; its cgroup links are pinned too, so the programs keep guarding
// those sockets while no router runs.
type Datapath struct {
	objs   slimembed.SecureObjects
	links  []link.Link
	pinDir string
}

// routerPrograms are the programs attached to the router's cgroup.
func (d *Datapath) routerPrograms() []struct {
	name    string
	attach  ebpf.AttachType
	program *ebpf.Program
} {
	p := d.objs.SecurePrograms
	return []struct {
		name    string
		attach  ebpf.AttachType
		program *ebpf.Program
	}{
		{"connect4", ebpf.AttachCGroupInet4Connect, p.SlimConnect4},
		{"bind4", ebpf.AttachCGroupInet4Bind, p.SlimBind4},
		{"getsockname4", ebpf.AttachCgroupInet4GetSockname, p.SlimGetsockname4},
		{"getpeername4", ebpf.AttachCgroupInet4GetPeername, p.SlimGetpeername4},
		{"setsockopt", ebpf.AttachCGroupSetsockopt, p.SlimSetsockopt},
		{"getsockopt", ebpf.AttachCGroupGetsockopt, p.SlimGetsockopt},
		{"sockops", ebpf.AttachCGroupSockOps, p.SlimSockops},
		{"ingress", ebpf.AttachCGroupInetIngress, p.SlimIngress},
	}
}

// Load loads the programs, reusing the maps pinned in pinDir (a directory
// on a bpffs, created if needed) by an earlier run. Maps whose layout
// changed (a new slim version) are replaced.
func Load(pinDir string) (*Datapath, error) {
	if err := os.MkdirAll(pinDir, 0o700); err != nil {
		return nil, fmt.Errorf("secure mode: bpffs directory: %w", err)
	}
	d := &Datapath{pinDir: pinDir}
	err := d.load()
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		removeMapPins(pinDir)
		err = d.load()
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Datapath) load() error {
	spec, err := slimembed.LoadSecure()
	if err != nil {
		return fmt.Errorf("secure mode: %w", err)
	}
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

func removeMapPins(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "link_") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// AttachRouter attaches the router's programs to its cgroup, replacing
// links an earlier run left pinned, and pins the new links.
func (d *Datapath) AttachRouter(cgroupPath string) error {
	d.detachPinned()
	for _, p := range d.routerPrograms() {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cgroupPath, Attach: p.attach, Program: p.program})
		if err != nil {
			return fmt.Errorf("secure mode: attaching %s to %s: %w", p.name, cgroupPath, err)
		}
		d.links = append(d.links, l)
		if err := l.Pin(filepath.Join(d.pinDir, "link_"+p.name)); err != nil {
			return fmt.Errorf("secure mode: pinning %s: %w", p.name, err)
		}
	}
	return nil
}

// AttachContainer attaches the overlay policy check to a container's
// cgroup. The link is pinned like the router's: the check stays while no
// router runs.
func (d *Datapath) AttachContainer(name, cgroupPath string) (link.Link, error) {
	l, err := link.AttachCgroup(link.CgroupOptions{
		Path: cgroupPath, Attach: ebpf.AttachCGroupInet4Connect, Program: d.objs.SlimContainerConnect4,
	})
	if err != nil {
		return nil, fmt.Errorf("secure mode: attaching the policy check to %s: %w", cgroupPath, err)
	}
	if err := l.Pin(filepath.Join(d.pinDir, "link_container_"+name)); err != nil {
		l.Close()
		return nil, fmt.Errorf("secure mode: pinning the policy check of %s: %w", name, err)
	}
	return l, nil
}

// detachPinned removes the links a router that died left behind.
func (d *Datapath) detachPinned() {
	entries, _ := os.ReadDir(d.pinDir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "link_") {
			continue
		}
		path := filepath.Join(d.pinDir, e.Name())
		if l, err := link.LoadPinnedLink(path, nil); err == nil {
			l.Unpin()
			l.Close()
		}
		os.Remove(path)
	}
}

// Remove detaches every program and removes every pin: secure mode is
// off until a router loads it again.
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
	if err := os.Remove(d.pinDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	os.Remove(filepath.Dir(d.pinDir)) // <bpffs>/slim, if no other router uses it
	return errors.Join(errs...)
}

func (d *Datapath) maps() []*ebpf.Map {
	m := d.objs.SecureMaps
	return []*ebpf.Map{m.SlimClients, m.SlimContainers, m.SlimCounters, m.SlimHits,
		m.SlimRoutes, m.SlimRules, m.SlimSettings, m.SlimSocks}
}
