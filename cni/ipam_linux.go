package cni

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/allocator"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/disk"

	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/registration"
)

// Addresses come from host-local's store and allocator: one file per
// allocated address (named by it, holding the container ID and interface)
// in DataDir/NAME, every change under an flock of that directory, so that
// concurrent ADDs never hand out one address twice and allocations survive
// a reboot.

// attachment is a CNI attachment: a container's interface.
type attachment struct{ id, ifname string }

func (n *network) storeDir() string { return filepath.Join(n.conf.DataDir, n.conf.Name) }

func (n *network) openStore() (*disk.Store, error) {
	store, err := disk.New(n.conf.Name, n.conf.DataDir)
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("slim: the address store %s: %v", n.storeDir(), err), "")
	}
	return store, nil
}

// reserved are the addresses of this host's subnet that are someone
// else's: the containers of the router's configuration and those
// registered by hand ('slim container add').
func (n *network) reserved() map[netip.Addr]bool {
	taken := map[netip.Addr]bool{}
	for _, c := range n.router.Containers {
		if addr, err := netip.ParseAddr(c.Addr); err == nil {
			taken[addr] = true
		}
	}
	records, _ := registration.List(n.router.Dir)
	for _, rec := range records {
		if rec.ContainerID == "" {
			taken[rec.Addr] = true
		}
	}
	return taken
}

// rangeSet is the addresses to hand out, as host-local ranges: first to
// last without the reserved ones.
func (n *network) rangeSet() allocator.RangeSet {
	taken := n.reserved()
	var set allocator.RangeSet
	add := func(from, to netip.Addr) {
		set = append(set, allocator.Range{
			RangeStart: net.IP(from.AsSlice()), RangeEnd: net.IP(to.AsSlice()),
			Subnet:  types.IPNet(*overlay.IPNet(n.self.Subnet)),
			Gateway: net.IP(n.self.Gateway().AsSlice()),
		})
	}
	start := n.first
	for addr := n.first; addr.Compare(n.last) <= 0; addr = addr.Next() {
		if !taken[addr] {
			continue
		}
		if start.Compare(addr) < 0 {
			add(start, addr.Prev())
		}
		start = addr.Next()
	}
	if start.Compare(n.last) <= 0 {
		add(start, n.last)
	}
	return set
}

// allocate reserves an address for the attachment.
func (n *network) allocate(a attachment) (netip.Addr, error) {
	set := n.rangeSet()
	if len(set) == 0 {
		return netip.Addr{}, n.exhausted(a)
	}
	if err := set.Canonicalize(); err != nil {
		return netip.Addr{}, configError("network %s: address range: %v", n.conf.Name, err)
	}
	store, err := n.openStore()
	if err != nil {
		return netip.Addr{}, err
	}
	defer store.Close()
	ipc, err := allocator.NewIPAllocator(&set, store, 0).Get(a.id, a.ifname, nil)
	switch {
	case err != nil && strings.HasPrefix(err.Error(), "no IP addresses available"):
		return netip.Addr{}, n.exhausted(a)
	case err != nil && strings.Contains(err.Error(), "duplicate allocation"):
		return netip.Addr{}, pluginError(types.ErrInternal, "container %s already has an address on network %s for %s (%v): the runtime must DEL it before adding it again", a.id, n.conf.Name, a.ifname, err)
	case err != nil:
		return netip.Addr{}, types.NewError(types.ErrIOFailure, fmt.Sprintf("slim: allocating an address in %s: %v", n.storeDir(), err), "")
	}
	addr, _ := netip.AddrFromSlice(ipc.Address.IP.To4())
	return addr, nil
}

func (n *network) exhausted(a attachment) error {
	allocated, _ := n.allocations()
	return pluginError(ErrSubnetExhausted, "no free overlay address for container %s: the %d addresses %s to %s of this host (subnet %s) are taken "+
		"(%d by containers of network %s, the others by the router's other containers); delete containers that are gone (or run the runtime's CNI GC), "+
		"or widen rangeStart/rangeEnd or the hosts' subnets (host_bits in %s)",
		a.id, size(n.first, n.last), n.first, n.last, n.self.Subnet, len(allocated), n.conf.Name, n.conf.RouterConfig)
}

func size(first, last netip.Addr) int {
	f, l := first.As4(), last.As4()
	return int(uint32(l[0])<<24|uint32(l[1])<<16|uint32(l[2])<<8|uint32(l[3])) -
		int(uint32(f[0])<<24|uint32(f[1])<<16|uint32(f[2])<<8|uint32(f[3])) + 1
}

// release frees the attachment's address; none is fine.
func (n *network) release(a attachment) error {
	if _, err := os.Stat(n.storeDir()); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	store, err := n.openStore()
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Lock(); err != nil {
		return err
	}
	defer store.Unlock()
	return store.ReleaseByID(a.id, a.ifname)
}

// allocations lists every allocated address by attachment, read under the
// store's lock.
func (n *network) allocations() (map[attachment]netip.Addr, error) {
	out := map[attachment]netip.Addr{}
	if _, err := os.Stat(n.storeDir()); errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	store, err := n.openStore()
	if err != nil {
		return nil, err
	}
	defer store.Close()
	if err := store.Lock(); err != nil {
		return nil, err
	}
	defer store.Unlock()
	entries, err := os.ReadDir(n.storeDir())
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		addr, err := netip.ParseAddr(e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue // the lock, last_reserved_ip.0
		}
		data, err := os.ReadFile(filepath.Join(n.storeDir(), e.Name()))
		if err != nil {
			continue
		}
		id, ifname, _ := strings.Cut(strings.TrimSpace(string(data)), disk.LineBreak)
		out[attachment{id: strings.TrimSpace(id), ifname: ifname}] = addr
	}
	return out, nil
}
