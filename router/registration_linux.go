package router

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/policy"
	"github.com/slimnet/slim/router/registration"
	"github.com/slimnet/slim/router/sockdiag"
)

// Containers registered while the router runs (docs/control.md,
// Containers). Each is saved as a record in DIR/containers (package
// registration), which is the truth: the router registers every record's
// container at start and every recordsInterval, and unregisters a
// container whose record is gone. The control API's container_add and
// container_del write and remove a record and act at once; the CNI plugin
// writes and removes records itself before it calls them, so that its
// containers are served (or no longer) even when the router was down.

// recordsInterval is how often the router rereads DIR/containers.
const recordsInterval = 5 * time.Second

// records is the state of the record sync, guarded by its mutex, which
// also orders every registration and unregistration.
type records struct {
	mu sync.Mutex
	// warned holds the last problem logged for each record, so that a
	// record that cannot be served is one warning, not one per sync.
	warned map[string]string
}

// keepRecords rereads the records every recordsInterval.
func (r *Router) keepRecords(ctx context.Context) error {
	ticker := time.NewTicker(recordsInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			r.syncRecords()
		}
	}
}

// syncRecords makes the runtime containers those of the records:
// registers new ones, unregisters those whose record is gone or changed.
func (r *Router) syncRecords() {
	r.records.mu.Lock()
	defer r.records.mu.Unlock()
	list, errs := registration.List(r.config.Dir)
	for _, err := range errs {
		r.warnRecord(err.Error(), err)
	}
	want := map[string]registration.Record{}
	for _, rec := range list {
		want[rec.Name] = rec
	}
	for _, c := range r.containers.list() {
		if c.Source != control.SourceRuntime {
			continue
		}
		if rec, ok := want[c.Name]; ok && rec.NetnsInode == c.Netns && rec.Addr == c.Addr {
			delete(want, c.Name) // registered as recorded
			continue
		}
		r.unregister(c, "its record in "+registration.Dir(r.config.Dir)+" was removed or replaced")
	}
	for _, rec := range list {
		if _, ok := want[rec.Name]; ok {
			r.registerRecord(rec)
		}
	}
	for key := range r.records.warned {
		if _, ok := want[key]; !ok && !slices.ContainsFunc(errs, func(e error) bool { return e.Error() == key }) {
			delete(r.records.warned, key)
		}
	}
}

// registerRecord registers a record's container, or warns (once) why not.
func (r *Router) registerRecord(rec registration.Record) {
	c, err := r.openContainer(rec.Name, rec.Netns, rec.Addr, control.SourceRuntime)
	if errors.Is(err, os.ErrNotExist) {
		r.warnRecord(rec.Name, fmt.Errorf("container %s is not served: its network namespace %s is gone (the container exited; its CNI DEL or 'slim container del %s' removes the record)", rec.Name, rec.Netns, rec.Name))
		return
	}
	if err == nil && c.Netns != rec.NetnsInode {
		c.releaseNow()
		err = fmt.Errorf("container %s is not served: %s is now another network namespace than the one registered (inode %d, not %d)", rec.Name, rec.Netns, c.Netns, rec.NetnsInode)
	}
	if err == nil {
		c.ContainerID, c.IfName = rec.ContainerID, rec.IfName
		if err = r.containers.add(c); err != nil {
			c.releaseNow()
		}
	}
	if err != nil {
		r.warnRecord(rec.Name, err)
		return
	}
	delete(r.records.warned, rec.Name)
	r.log.Info("container registered", "container", c.Name, "addr", c.Addr, "netns", c.Path, "from", registration.Path(r.config.Dir, c.Name))
	r.containersChanged()
}

// warnRecord logs a record's problem unless it is the one logged last.
func (r *Router) warnRecord(key string, err error) {
	if r.records.warned == nil {
		r.records.warned = map[string]string{}
	}
	if r.records.warned[key] == err.Error() {
		return
	}
	r.records.warned[key] = err.Error()
	r.log.Warn("container record", "err", err)
}

// containerAPI serves the control API's container operations.
type containerAPI struct{ r *Router }

var _ control.ContainerHandler = containerAPI{}

// AddContainer registers a container and saves its record.
func (api containerAPI) AddContainer(spec control.ContainerSpec) (control.ContainerSpec, error) {
	r := api.r
	addr, err := checkSpec(spec)
	if err != nil {
		return control.ContainerSpec{}, err
	}
	r.records.mu.Lock()
	defer r.records.mu.Unlock()
	c, err := r.openContainer(spec.Name, spec.Netns, addr, control.SourceRuntime)
	if err != nil {
		return control.ContainerSpec{}, err
	}
	c.ContainerID, c.IfName = spec.ContainerID, spec.IfName
	if old := r.containers.named(spec.Name); old != nil && old.Netns == c.Netns && old.Addr == addr && old.Source == c.Source {
		c.releaseNow() // registered already, as asked: make sure it is saved
		return spec, r.saveRecord(old)
	}
	if err := r.containers.add(c); err != nil {
		c.releaseNow()
		return control.ContainerSpec{}, err
	}
	if err := r.saveRecord(c); err != nil {
		r.containers.remove(c.Name)
		c.release()
		return control.ContainerSpec{}, fmt.Errorf("container %s not registered: %w", c.Name, err)
	}
	delete(r.records.warned, c.Name)
	r.log.Info("container registered", "container", c.Name, "addr", c.Addr, "netns", c.Path)
	r.containersChanged()
	spec.Addr = addr.String()
	return spec, nil
}

// checkSpec checks what can be checked without the kernel.
func checkSpec(spec control.ContainerSpec) (netip.Addr, error) {
	if err := registration.CheckName(spec.Name); err != nil {
		return netip.Addr{}, err
	}
	if !filepath.IsAbs(spec.Netns) {
		return netip.Addr{}, fmt.Errorf("container %s: netns %q must be an absolute path (such as /run/netns/NAME or /proc/PID/ns/net)", spec.Name, spec.Netns)
	}
	addr, err := netip.ParseAddr(spec.Addr)
	if err != nil || !addr.Is4() {
		return netip.Addr{}, fmt.Errorf("container %s: addr %q is not an IPv4 address", spec.Name, spec.Addr)
	}
	return addr, nil
}

func (r *Router) saveRecord(c *container) error {
	if rec, err := registration.Read(r.config.Dir, c.Name); err == nil && rec.NetnsInode == c.Netns && rec.Addr == c.Addr {
		return nil
	}
	return registration.Write(r.config.Dir, registration.Record{
		Name: c.Name, Netns: c.Path, NetnsInode: c.Netns, Addr: c.Addr,
		ContainerID: c.ContainerID, IfName: c.IfName, Added: time.Now().UTC(),
	})
}

// DeleteContainer removes a container's record and unregisters it.
func (api containerAPI) DeleteContainer(name string) (int, error) {
	r := api.r
	if err := registration.CheckName(name); err != nil {
		return 0, err
	}
	r.records.mu.Lock()
	defer r.records.mu.Unlock()
	c := r.containers.named(name)
	if c != nil && c.Source == control.SourceConfig {
		return 0, fmt.Errorf("container %s is in the router's configuration file: remove it there and restart the router", name)
	}
	if _, err := registration.Remove(r.config.Dir, name); err != nil {
		return 0, err
	}
	delete(r.records.warned, name)
	if c == nil {
		return 0, nil
	}
	return r.unregister(c, "unregistered through the control API"), nil
}

// unregister forgets a container, resets its accelerated connections and
// listeners, and lets its namespace go. It returns how many sockets it
// reset.
func (r *Router) unregister(c *container, why string) int {
	r.containers.remove(c.Name)
	n := r.resetContainer(c)
	r.mode.forget(c)
	c.release()
	r.containersChanged()
	r.log.Info("container unregistered", "container", c.Name, "addr", c.Addr, "why", why, "sockets_reset", n)
	return n
}

// resetContainer withdraws a container's listeners from the directory and
// resets (SOCK_DESTROY, as ss --kill) every host socket of it the router
// knows: its listeners, the connections they accepted and the connections
// of the pool sockets it was given. Its peers see resets; its processes,
// if any are left, see ECONNABORTED.
func (r *Router) resetContainer(c *container) int {
	listeners, _ := r.listeners.snapshot()
	hosts := map[netip.AddrPort]bool{}
	for _, l := range listeners {
		if l.Container == c.Name {
			hosts[l.Host] = true
		}
	}
	pool := r.census.DropContainer(c.Name)
	if r.listeners.removeWhere(func(l listener) bool { return l.Container == c.Name }) {
		r.publish()
	}
	if len(hosts) == 0 && len(pool) == 0 {
		return 0
	}
	dump, err := sockdiag.TCP(sockdiag.Live)
	if err != nil {
		r.log.Warn("cannot reset the accelerated connections of an unregistered container", "container", c.Name, "err", err)
		return 0
	}
	reset := 0
	var failed error
	for _, s := range dump {
		if !pool[s.Cookie] && !hosts[s.Local] {
			continue
		}
		if err := sockdiag.Destroy(s); err != nil {
			failed = err
			continue
		}
		reset++
	}
	if failed != nil {
		r.log.Warn("some accelerated connections of an unregistered container were not reset", "container", c.Name, "err", failed)
	}
	return reset
}

// containersChanged applies the policy again when a rule names a
// container: the rule follows the container's address. The policy is nil
// outside secure mode.
func (r *Router) containersChanged() {
	r.policyMu.Lock()
	defer r.policyMu.Unlock()
	if r.policy == nil || !slices.ContainsFunc(r.policy.List(), func(l policy.Listed) bool { return l.Rule.FromContainer != "" }) {
		return
	}
	if err := r.applyPolicy(); err != nil {
		r.log.Warn("secure mode: applying the policy after a container change", "err", err)
	}
}
