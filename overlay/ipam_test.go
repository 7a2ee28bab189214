package overlay

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
)

func smallHost(bits int) HostPlan {
	return HostPlan{Underlay: netip.MustParseAddr("198.18.0.1"), Subnet: netip.PrefixFrom(netip.MustParseAddr("198.19.1.0"), bits)}
}

func TestAllocatorSkipsReservedAddresses(t *testing.T) {
	a := NewAllocator(smallHost(29)) // 198.19.1.0-7: .0 tunnel, .1 gateway, .7 broadcast
	var got []string
	for {
		addr, err := a.Allocate()
		if err != nil {
			if !errors.Is(err, ErrExhausted) {
				t.Fatalf("unexpected error %v", err)
			}
			break
		}
		got = append(got, addr.String())
	}
	want := []string{"198.19.1.2", "198.19.1.3", "198.19.1.4", "198.19.1.5", "198.19.1.6"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
}

func TestAllocatorExhaustionIsAnError(t *testing.T) {
	a := NewAllocator(smallHost(30)) // one assignable address: .2
	if _, err := a.Allocate(); err != nil {
		t.Fatal(err)
	}
	_, err := a.Allocate()
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("second Allocate = %v, want ErrExhausted", err)
	}
}

func TestAllocatorRelease(t *testing.T) {
	a := NewAllocator(smallHost(29))
	var addrs []netip.Addr
	for range 5 {
		addr, err := a.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, addr)
	}
	if err := a.Release(addrs[2]); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(addrs[2]); err == nil {
		t.Error("double release succeeded")
	}
	if err := a.Release(netip.MustParseAddr("198.19.9.9")); err == nil {
		t.Error("release of a foreign address succeeded")
	}
	again, err := a.Allocate()
	if err != nil || again != addrs[2] {
		t.Fatalf("after release Allocate = %v, %v; want %v", again, err, addrs[2])
	}
	if a.InUse() != 5 {
		t.Errorf("InUse = %d, want 5", a.InUse())
	}
}

func TestAllocatorDoesNotReuseAtOnce(t *testing.T) {
	a := NewAllocator(smallHost(24))
	first, _ := a.Allocate()
	if err := a.Release(first); err != nil {
		t.Fatal(err)
	}
	second, _ := a.Allocate()
	if second == first {
		t.Errorf("released address %s handed out again at once", first)
	}
}

func TestAllocatorReserve(t *testing.T) {
	a := NewAllocator(smallHost(24))
	if err := a.Reserve(netip.MustParseAddr("198.19.1.2")); err != nil {
		t.Fatal(err)
	}
	if err := a.Reserve(netip.MustParseAddr("198.19.1.2")); err == nil {
		t.Error("reserving an address twice succeeded")
	}
	for _, bad := range []string{"198.19.1.0", "198.19.1.1", "198.19.1.255", "198.19.2.5"} {
		if err := a.Reserve(netip.MustParseAddr(bad)); err == nil {
			t.Errorf("Reserve(%s) succeeded", bad)
		}
	}
	if addr, _ := a.Allocate(); addr.String() != "198.19.1.3" {
		t.Errorf("Allocate after Reserve(.2) = %s", addr)
	}
}

func TestAllocatorNoDuplicatesUnderConcurrency(t *testing.T) {
	a := NewAllocator(smallHost(24))
	var mu sync.Mutex
	seen := map[netip.Addr]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				addr, err := a.Allocate()
				if err != nil {
					return
				}
				mu.Lock()
				if seen[addr] {
					t.Errorf("address %s handed out twice", addr)
				}
				seen[addr] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 253 {
		t.Errorf("allocated %d addresses from a /24, want 253", len(seen))
	}
}
