package overlay

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// ErrExhausted is returned when a subnet has no free address left.
var ErrExhausted = errors.New("no free overlay address")

// Allocator hands out container addresses from one host's subnet. The
// network address (the tunnel endpoint), the gateway and the broadcast
// address are never handed out. It is safe for concurrent use.
type Allocator struct {
	subnet netip.Prefix
	mu     sync.Mutex
	used   map[netip.Addr]bool
	next   netip.Addr // where the search for a free address starts
}

// NewAllocator returns an allocator for the host's subnet.
func NewAllocator(host HostPlan) *Allocator {
	return &Allocator{
		subnet: host.Subnet,
		used:   map[netip.Addr]bool{},
		next:   host.Gateway().Next(),
	}
}

// first and last are the bounds of the assignable range.
func (a *Allocator) first() netip.Addr { return a.subnet.Addr().Next().Next() }

func (a *Allocator) last() netip.Addr {
	b := a.subnet.Addr().As4()
	hostBits := 32 - a.subnet.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		b[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	return netip.AddrFrom4(b).Prev() // the broadcast address is reserved
}

// Allocate returns a free address, searching round-robin from the last one
// handed out so a just-released address is not reused at once.
func (a *Allocator) Allocate() (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	first, last := a.first(), a.last()
	addr := a.next
	for range a.size() {
		if addr.Compare(last) > 0 {
			addr = first
		}
		if !a.used[addr] {
			a.used[addr] = true
			a.next = addr.Next()
			return addr, nil
		}
		addr = addr.Next()
	}
	return netip.Addr{}, fmt.Errorf("%w in %s", ErrExhausted, a.subnet)
}

// size is the number of assignable addresses.
func (a *Allocator) size() int { return 1<<(32-a.subnet.Bits()) - 3 }

// Reserve marks a specific address as used, for addresses already in use
// when the allocator is built (a router restart).
func (a *Allocator) Reserve(addr netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if addr.Compare(a.first()) < 0 || addr.Compare(a.last()) > 0 || !a.subnet.Contains(addr) {
		return fmt.Errorf("address %s is not assignable in %s", addr, a.subnet)
	}
	if a.used[addr] {
		return fmt.Errorf("address %s is already in use", addr)
	}
	a.used[addr] = true
	return nil
}

// Release returns an address to the pool. Releasing an address that is not
// allocated is an error, so double frees are caught.
func (a *Allocator) Release(addr netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.used[addr] {
		return fmt.Errorf("address %s is not allocated in %s", addr, a.subnet)
	}
	delete(a.used, addr)
	return nil
}

// InUse returns how many addresses are allocated.
func (a *Allocator) InUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.used)
}
