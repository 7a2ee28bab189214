package e2e

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"

	named "github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/internal/testenv"
)

// Container churn: churnContainers containers come and go through the CNI
// plugin, churnWorkers at a time per host, while accelerated traffic runs.
const (
	churnContainers = 200
	churnWorkers    = 4
)

// TestIntegrationContainerChurn: 200 containers are created and removed
// across two hosts while an accelerated client and server (the lab's
// containers) keep connecting. No address is handed to two live
// containers; afterwards no veth, allocation, record, router entry, held
// namespace or descriptor of theirs is left, and the traffic never failed
// or fell back to the overlay.
func TestIntegrationContainerChurn(t *testing.T) {
	testenv.Tools(t, "ping")
	l := newLab(t, "chn")
	hosts := []*cniHost{newCNIHost(l, "h1"), newCNIHost(l, "h2")}
	traffic := startChurn(t, l, 7700, "")
	before := traffic.waitForTick(func(k churnTick) bool { return k.acc >= 50 }, 20*time.Second)
	fdsBefore, nsBefore := map[string]int{}, map[string]int{}
	for _, h := range hosts {
		fdsBefore[h.host], nsBefore[h.host] = l.routerFDs(h.host)
		if nsBefore[h.host] != 2 {
			t.Errorf("the router of %s holds %d namespaces, want its 2 containers'", h.host, nsBefore[h.host])
		}
	}

	started := time.Now()
	var wg sync.WaitGroup
	for _, h := range hosts {
		live := &liveAddrs{byAddr: map[netip.Addr]string{}}
		for w := range churnWorkers {
			wg.Go(func() { churnWorker(t, h, live, w, churnContainers/len(hosts)/churnWorkers) })
		}
	}
	wg.Wait()
	after := traffic.lastTick()
	t.Logf("%d containers came and went in %v; traffic before %+v, after %+v", churnContainers, time.Since(started), before, after)
	if after.acc <= before.acc || after.ovl != before.ovl || after.err != before.err {
		t.Errorf("during the churn the traffic went on badly: %d more accelerated, %d over the overlay, %d failed",
			after.acc-before.acc, after.ovl-before.ovl, after.err-before.err)
	}
	// The traffic's shim connections hold pool batches the router made
	// ahead for them (up to a batch each, more than before the churn as
	// their batches grew): they close with the connections.
	traffic.stop()
	for _, h := range hosts {
		h.assertClean(t)
		h.waitForContainers(nil, 5*time.Second)
		checkRouterFDs(t, l, h.host, fdsBefore[h.host], nsBefore[h.host])
	}
	if left, _ := named.List(l.Name + "-k"); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
}

// liveAddrs is the addresses of one host's live containers.
type liveAddrs struct {
	mu     sync.Mutex
	byAddr map[netip.Addr]string
}

// take records a container's address; false if a live one has it.
func (live *liveAddrs) take(addr netip.Addr, id string) (string, bool) {
	live.mu.Lock()
	defer live.mu.Unlock()
	if other, ok := live.byAddr[addr]; ok {
		return other, false
	}
	live.byAddr[addr] = id
	return "", true
}

func (live *liveAddrs) drop(addr netip.Addr) {
	live.mu.Lock()
	defer live.mu.Unlock()
	delete(live.byAddr, addr)
}

// churnWorker adds and deletes n containers one after the other; every
// tenth one pings a container of the other host before it goes.
func churnWorker(t *testing.T, h *cniHost, live *liveAddrs, worker, n int) {
	peer := map[string]string{"h1": "h2-c1", "h2": "h1-c1"}[h.host]
	for i := range n {
		seq := netnsSeq.Add(1)
		c := cniContainer{id: fmt.Sprintf("churn%s%d", h.host, seq), netns: fmt.Sprintf("%s-k%d", h.l.Name, seq)}
		c.path = named.Path(c.netns)
		if err := named.Create(c.netns); err != nil {
			t.Error(err)
			return
		}
		err := churnOne(t, h, live, c, i%10 == worker%10, peer)
		if delErr := named.Delete(c.netns); err == nil {
			err = delErr
		}
		if err != nil {
			t.Errorf("container %s: %v", c.id, err)
			return
		}
	}
}

func churnOne(t *testing.T, h *cniHost, live *liveAddrs, c cniContainer, ping bool, peer string) error {
	conf := h.conf("1.1.0", nil)
	out, errOut, err := h.invoke("ADD", c, c.path, "eth0", conf)
	if err != nil {
		return fmt.Errorf("ADD: %v\n%s\n%s", err, out, errOut)
	}
	res, err := current.NewResult([]byte(out))
	if err != nil {
		return err
	}
	addr, _ := netip.AddrFromSlice(res.(*current.Result).IPs[0].Address.IP.To4())
	if other, ok := live.take(addr, c.id); !ok {
		return fmt.Errorf("address %s handed out while %s, alive, has it", addr, other)
	}
	if ping {
		if out, err := inNetns(t, c.netns, "ping", "-c", "1", "-W", "3", h.l.containerAddr(peer)); err != nil {
			return fmt.Errorf("no overlay network: %v\n%s", err, out)
		}
	}
	live.drop(addr)
	if out, errOut, err := h.invoke("DEL", c, c.path, "eth0", conf); err != nil {
		return fmt.Errorf("DEL: %v\n%s\n%s", err, out, errOut)
	}
	return nil
}

// checkRouterFDs waits until the router of host holds no more namespaces
// than before the churn and about as many descriptors (peer and control
// connections come and go; a removed container's pool witness is closed
// 3 s after it goes).
func checkRouterFDs(t *testing.T, l *testLab, host string, fdsBefore, nsBefore int) {
	t.Helper()
	const slack = 4
	var fds, ns int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if fds, ns = l.routerFDs(host); ns == nsBefore && fds <= fdsBefore+slack {
			return
		}
	}
	t.Errorf("router of %s: %d descriptors (%d namespaces) after the churn, %d (%d) before", host, fds, ns, fdsBefore, nsBefore)
}
