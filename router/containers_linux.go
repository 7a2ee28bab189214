package router

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/control"
)

// container is a registered container of this host.
type container struct {
	Name  string
	Addr  netip.Addr
	Netns uint64 // inode of its network namespace
	// Path is the namespace file it was registered with; Source is
	// control.SourceConfig or control.SourceRuntime.
	Path   string
	Source string
	// ContainerID and IfName: the CNI attachment that made it, if any.
	ContainerID, IfName string
	// ns holds the namespace open while the container is registered, so
	// that its inode cannot be given to another namespace meanwhile.
	ns *os.File
	// removed is set when the container is unregistered: a shim
	// connection identified as it before gets nothing more.
	removed atomic.Bool
	// pool counts the host sockets it holds (poolquota_linux.go).
	pool *poolAccount
	// book holds the names of the connections its processes pass to one
	// another (namebook_linux.go).
	book containerBook
}

// view is the container as the control API shows it.
func (c *container) view() control.Container {
	return control.Container{Name: c.Name, Addr: c.Addr, Netns: c.Path, Source: c.Source, ContainerID: c.ContainerID, IfName: c.IfName}
}

// witnessGrace is how long an unregistered container's pool witness
// stays open: a POOL request under way when it was unregistered may still
// add a socket to it.
const witnessGrace = 3 * time.Second

// release lets the namespace go and closes the sockets made ahead for
// the container at once, and closes the pool witness after witnessGrace.
func (c *container) release() {
	if c.ns != nil {
		c.ns.Close()
	}
	c.book.close()
	if c.pool != nil {
		c.pool.closeAhead()
		time.AfterFunc(witnessGrace, c.pool.witness.close)
	}
}

// releaseNow closes everything at once, when no request can be under way
// (the router is stopping, or the container was never registered).
func (c *container) releaseNow() {
	if c.ns != nil {
		c.ns.Close()
	}
	c.book.close()
	if c.pool != nil {
		c.pool.closeAhead()
		c.pool.witness.close()
	}
}

// containerSet is the registered containers, by namespace and by name.
// Shim connections look callers up in it while containers come and go.
type containerSet struct {
	mu      sync.RWMutex
	byNetns map[uint64]*container
	byName  map[string]*container
}

func newContainerSet() *containerSet {
	return &containerSet{byNetns: map[uint64]*container{}, byName: map[string]*container{}}
}

// lookup finds the container of a network namespace.
func (s *containerSet) lookup(netns uint64) *container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byNetns[netns]
}

// named finds a container by name.
func (s *containerSet) named(name string) *container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byName[name]
}

// list returns the containers sorted by name.
func (s *containerSet) list() []*container {
	s.mu.RLock()
	defer s.mu.RUnlock()
	cs := make([]*container, 0, len(s.byName))
	for _, c := range s.byName {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *container) int { return strings.Compare(a.Name, b.Name) })
	return cs
}

func (s *containerSet) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byName)
}

// add registers c unless its name, namespace or address is another
// container's.
func (s *containerSet) add(c *container) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if other := s.byName[c.Name]; other != nil {
		return fmt.Errorf("container %s is registered already (netns %s, addr %s): unregister it first", c.Name, other.Path, other.Addr)
	}
	if other := s.byNetns[c.Netns]; other != nil {
		return fmt.Errorf("container %s: netns %s is the network namespace of container %s too; each container has one of its own", c.Name, c.Path, other.Name)
	}
	for _, other := range s.byName {
		if other.Addr == c.Addr {
			return fmt.Errorf("container %s: address %s is container %s's", c.Name, c.Addr, other.Name)
		}
	}
	s.byName[c.Name], s.byNetns[c.Netns] = c, c
	return nil
}

// remove unregisters the named container and returns it (nil if none).
func (s *containerSet) remove(name string) *container {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.byName[name]
	if c != nil {
		delete(s.byName, name)
		delete(s.byNetns, c.Netns)
		c.removed.Store(true)
	}
	return c
}

// nsGetNSType is the NS_GET_NSTYPE ioctl: the type of a namespace file.
const nsGetNSType = 0xb703

// errNotNamespace marks a path that exists but is not a network namespace.
var errNotNamespace = errors.New("not a network namespace")

// openNetns opens a network namespace file and returns it, held, with its
// inode. The path is first opened with O_PATH, which has no side effect
// whatever the file is (a FIFO does not block, a device is not opened), and
// only a namespace file is then opened for real.
func openNetns(path string) (*os.File, uint64, error) {
	pathFD, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(pathFD)
	var fs unix.Statfs_t
	if err := unix.Fstatfs(pathFD, &fs); err != nil {
		return nil, 0, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	if fs.Type != unix.NSFS_MAGIC {
		return nil, 0, fmt.Errorf("%s is %w: not a namespace file (want a path such as /run/netns/NAME or /proc/PID/ns/net)", path, errNotNamespace)
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", pathFD), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	file := os.NewFile(uintptr(fd), path)
	kind, err := unix.IoctlRetInt(fd, nsGetNSType)
	if err != nil || kind != unix.CLONE_NEWNET {
		file.Close()
		return nil, 0, fmt.Errorf("%s is %w: another kind of namespace", path, errNotNamespace)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		file.Close()
		return nil, 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return file, st.Ino, nil
}

// openContainer checks a container's address, opens its namespace and
// returns it, not yet registered.
func (r *Router) openContainer(name, path string, addr netip.Addr, source string) (*container, error) {
	if problem := r.self.ContainerAddrProblem(addr); problem != "" {
		first, last := r.self.ContainerRange()
		return nil, fmt.Errorf("container %s: addr %s %s; a container's address is from %s to %s", name, addr, problem, first, last)
	}
	ns, ino, err := openNetns(path)
	if err != nil {
		return nil, fmt.Errorf("container %s: network namespace: %w", name, err)
	}
	own, err := namespaceInode("/proc/self/ns/net")
	if err == nil && ino == own {
		ns.Close()
		return nil, fmt.Errorf("container %s: netns %s is the router's own (the host's) network namespace", name, path)
	}
	pool, err := r.newPoolAccount()
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("container %s: %w", name, err)
	}
	return &container{Name: name, Addr: addr, Netns: ino, Path: path, Source: source, ns: ns, pool: pool}, nil
}

// registerContainers registers the containers of the configuration and
// those saved in DIR/containers. A namespace that is gone (the container
// exited while the router was down) is one warning, and the rest are
// served; a configuration that gives two containers one namespace, or the
// host's, is an error.
func (r *Router) registerContainers() error {
	var gone []string
	for _, cfg := range r.config.Containers {
		c, err := r.openContainer(cfg.Name, cfg.Netns, netip.MustParseAddr(cfg.Addr), control.SourceConfig)
		if errors.Is(err, os.ErrNotExist) {
			gone = append(gone, fmt.Sprintf("%s (%s)", cfg.Name, cfg.Netns))
			continue
		}
		if err != nil {
			r.closeContainers()
			return err
		}
		if err := r.containers.add(c); err != nil {
			c.releaseNow()
			r.closeContainers()
			return err
		}
	}
	if len(gone) > 0 {
		r.log.Warn("network namespaces gone: these containers of the config are not served (the others are)",
			"containers", strings.Join(gone, ", "))
	}
	r.syncRecords()
	return nil
}

// checkRegistered says why a shim's caller gets nothing from the router:
// its namespace is no registered container's, or the container it was
// identified as has been unregistered since. nil if it is served.
func (r *Router) checkRegistered(who caller) error {
	switch {
	case who.Container == nil:
		return fmt.Errorf("process %d's network namespace net:[%d] is not a container registered with this router "+
			"(register it with the slim CNI plugin, 'slim container add' or the router's config)", who.PID, who.Netns)
	case who.Container.removed.Load():
		return fmt.Errorf("container %s was unregistered from this router", who.Container.Name)
	}
	return nil
}

// addresses maps each container to its overlay address.
func (s *containerSet) addresses() map[string]netip.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	addrs := make(map[string]netip.Addr, len(s.byName))
	for name, c := range s.byName {
		addrs[name] = c.Addr
	}
	return addrs
}

// close releases every container's namespace and pool witness at once
// (the sockets they witness are the containers' and live on): the router
// is stopping and no request is under way.
func (s *containerSet) close() {
	for _, c := range s.list() {
		c.releaseNow()
	}
}
