package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	named "github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/internal/testenv"
)

// TestIntegrationCNIPlugin runs the slim CNI plugin alone on a lab host,
// as a runtime would, and checks what a user of the spec relies on.
func TestIntegrationCNIPlugin(t *testing.T) {
	testenv.Tools(t, "ip", "ping")
	l := newLab(t, "cni")
	h := newCNIHost(l, "h1")
	for _, tt := range []struct {
		name string
		run  func(*testing.T, *cniHost)
	}{
		{"conformance", cniConformance},
		{"concurrent-adds", cniConcurrentAdds},
		{"del-twice", cniDelTwice},
		{"check-after-change", cniCheckAfterChange},
		{"gc", cniGC},
		{"exhaustion", cniExhaustion},
		{"bad-input", cniBadInput},
		{"router-down", cniRouterDown},
		{"overlay-down", cniOverlayDown}, // last: it detaches the lab's containers
	} {
		t.Run(tt.name, func(t *testing.T) {
			l.t = t
			tt.run(t, h)
			h.assertClean(t)
		})
	}
}

// assertClean checks that nothing of the plugin's is left on the host.
func (h *cniHost) assertClean(t *testing.T) {
	t.Helper()
	if v, a, r := h.pluginVeths(), h.allocations(), h.records(); len(v)+len(a)+len(r) > 0 {
		t.Errorf("left behind: veths %v, allocations %v, records %v", v, a, r)
	}
}

// cniConformance: through libcni, ADD gives a result of the spec's form
// (and of an older version when the config asks for one), the container
// has its address and the overlay route and no default route, reaches
// another host's container, and is served by the router; STATUS and
// CHECK pass; DEL twice leaves nothing.
func cniConformance(t *testing.T, h *cniHost) {
	c := h.newContainer()
	list := h.confList("1.1.0")
	rt := &libcni.RuntimeConf{ContainerID: c.id, NetNS: c.path, IfName: "eth0"}
	cni := h.libcni()
	var raw types.Result
	err := h.do(func() error {
		if _, err := cni.ValidateNetworkList(context.Background(), list); err != nil {
			return fmt.Errorf("validate: %w", err)
		}
		if err := cni.GetStatusNetworkList(context.Background(), list); err != nil {
			return fmt.Errorf("status: %w", err)
		}
		var err error
		raw, err = cni.AddNetworkList(context.Background(), list, rt)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := current.NewResultFromResult(raw)
	if err != nil {
		t.Fatal(err)
	}
	addr := checkResult(t, h, c, res)
	out, _ := inNetns(t, c.netns, "ip", "-4", "route")
	if !strings.Contains(out, "198.19.0.0/16 via 198.19.1.1 dev eth0") || strings.Contains(out, "default") {
		t.Errorf("routes in the container:\n%s\nwant 198.19.0.0/16 via 198.19.1.1 and no default route", out)
	}
	if out, err := inNetns(t, c.netns, "ping", "-c", "1", "-W", "3", h.l.containerAddr("h2-c1")); err != nil {
		t.Errorf("the container does not reach h2-c1 over the overlay: %v\n%s", err, out)
	}
	if got := h.routerContainers()[c.id]; got.Addr != addr || got.Netns != c.path || got.ContainerID != c.id {
		t.Errorf("the router serves %+v, want %s at %s", got, c.id, addr)
	}
	err = h.do(func() error {
		if err := cni.CheckNetworkList(context.Background(), list, rt); err != nil {
			return fmt.Errorf("check: %w", err)
		}
		for range 2 {
			if err := cni.DelNetworkList(context.Background(), list, rt); err != nil {
				return fmt.Errorf("del: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.routerContainers()[c.id]; ok {
		t.Error("the router still serves the container after DEL")
	}

	old := h.confList("0.4.0")
	err = h.do(func() error {
		res, err := cni.AddNetworkList(context.Background(), old, rt)
		if err == nil && res.Version() != "0.4.0" {
			err = fmt.Errorf("a 0.4.0 configuration got a %s result", res.Version())
		}
		return errors.Join(err, cni.DelNetworkList(context.Background(), old, rt))
	})
	if err != nil {
		t.Error(err)
	}
}

// checkResult checks an ADD result's form and the container's address.
func checkResult(t *testing.T, h *cniHost, c cniContainer, res *current.Result) netip.Addr {
	t.Helper()
	if res.CNIVersion != "1.1.0" || len(res.Interfaces) != 2 || len(res.Routes) != 1 {
		t.Fatalf("result %+v: want version 1.1.0, two interfaces, one route", res)
	}
	hostIf, contIf := res.Interfaces[0], res.Interfaces[1]
	if !strings.HasPrefix(hostIf.Name, "slim") || hostIf.Sandbox != "" || contIf.Name != "eth0" || contIf.Sandbox != c.path || contIf.Mac == "" {
		t.Errorf("interfaces %+v %+v", hostIf, contIf)
	}
	addr := addrOf(t, res)
	ip := res.IPs[0]
	if ip.Interface == nil || *ip.Interface != 1 || ip.Gateway.String() != "198.19.1.1" || ip.Address.String() != addr.String()+"/24" {
		t.Errorf("IP config %+v", ip)
	}
	if !netip.MustParsePrefix("198.19.1.0/24").Contains(addr) || addr.As4()[3] < 4 || addr.As4()[3] == 255 {
		t.Errorf("address %s: want one of h1's subnet, not the tunnel, gateway, broadcast or the lab's containers (.2, .3)", addr)
	}
	if r := res.Routes[0]; r.Dst.String() != "198.19.0.0/16" || r.GW.String() != "198.19.1.1" {
		t.Errorf("route %+v, want 198.19.0.0/16 via 198.19.1.1", r)
	}
	out, _ := inNetns(t, c.netns, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	if !strings.Contains(out, addr.String()+"/24") {
		t.Errorf("eth0 in the container: %q, want %s/24", out, addr)
	}
	return addr
}

// cniConcurrentAdds: ADDs at once never hand out one address twice, and
// DELs at once leave nothing.
func cniConcurrentAdds(t *testing.T, h *cniHost) {
	const n = 16
	containers := make([]cniContainer, n)
	for i := range containers {
		containers[i] = h.newContainer()
	}
	addrs := make([]netip.Addr, n)
	var wg sync.WaitGroup
	for i, c := range containers {
		wg.Go(func() {
			out, errOut, err := h.invoke("ADD", c, c.path, "eth0", h.conf("1.1.0", nil))
			if err != nil {
				t.Errorf("ADD %s: %v\n%s\n%s", c.id, err, out, errOut)
				return
			}
			res, err := current.NewResult([]byte(out))
			if err == nil {
				addrs[i] = addrOf(t, res.(*current.Result))
			}
		})
	}
	wg.Wait()
	seen := map[netip.Addr]string{}
	for i, a := range addrs {
		if other, dup := seen[a]; dup && a.IsValid() {
			t.Errorf("address %s handed to %s and %s", a, other, containers[i].id)
		}
		seen[a] = containers[i].id
	}
	if got := len(h.allocations()); got != n {
		t.Errorf("%d allocations after %d ADDs", got, n)
	}
	for _, c := range containers {
		wg.Go(func() { h.del(c, c.path) })
	}
	wg.Wait()
}

// cniDelTwice: DEL succeeds again, with an empty netns (containerd's
// second DEL), and when the namespace is gone.
func cniDelTwice(t *testing.T, h *cniHost) {
	c := h.newContainer()
	h.add(c)
	h.del(c, c.path)
	h.del(c, "")
	h.assertClean(t)

	gone := h.newContainer()
	h.add(gone)
	if err := named.Delete(gone.netns); err != nil {
		t.Fatal(err)
	}
	h.del(gone, gone.path)
	h.del(gone, "")
}

// cniCheckAfterChange: CHECK passes after ADD, fails with a message that
// says what changed when the route or the host end is changed by hand, and
// passes again once it is put back.
func cniCheckAfterChange(t *testing.T, h *cniHost) {
	c := h.newContainer()
	res := h.add(c)
	prev, _ := res.GetAsVersion("1.1.0")
	conf := checkConf(t, h, prev)
	check := func() string {
		t.Helper()
		out, _, err := h.invoke("CHECK", c, c.path, "eth0", conf)
		if err == nil {
			return ""
		}
		e := cniError(t, out)
		if e.Code != 103 {
			t.Errorf("CHECK error code %d (%s), want 103", e.Code, e.Msg)
		}
		return e.Msg
	}
	if msg := check(); msg != "" {
		t.Fatalf("CHECK right after ADD: %s", msg)
	}
	if out, err := inNetns(t, c.netns, "ip", "route", "del", "198.19.0.0/16"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if msg := check(); !strings.Contains(msg, "its route to 198.19.0.0/16 via 198.19.1.1 is gone") {
		t.Errorf("CHECK after the overlay route was deleted: %q, want it named", msg)
	}
	inNetns(t, c.netns, "ip", "route", "add", "198.19.0.0/16", "via", "198.19.1.1")
	if msg := check(); msg != "" {
		t.Errorf("CHECK after the route was put back: %s", msg)
	}
	hostEnd := res.Interfaces[0].Name
	if out, err := inNetns(t, h.node.Netns, "ip", "link", "set", hostEnd, "down"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if msg := check(); !strings.Contains(msg, hostEnd+" is down") {
		t.Errorf("CHECK with the host end down: %q", msg)
	}
	h.del(c, c.path)
}

// checkConf is the configuration CHECK gets: with prevResult.
func checkConf(t *testing.T, h *cniHost, prev types.Result) []byte {
	t.Helper()
	var buf strings.Builder
	if err := prev.PrintTo(&buf); err != nil {
		t.Fatal(err)
	}
	var prevJSON map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &prevJSON); err != nil {
		t.Fatal(err)
	}
	return h.conf("1.1.0", map[string]any{"prevResult": prevJSON})
}
