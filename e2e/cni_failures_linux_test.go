package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// cniGC: GC keeps the valid attachments and removes the others' addresses,
// records, router registrations and host ends, and host ends on the bridge
// that no attachment owns.
func cniGC(t *testing.T, h *cniHost) {
	keep, drop1, drop2 := h.newContainer(), h.newContainer(), h.newContainer()
	for _, c := range []cniContainer{keep, drop1, drop2} {
		h.add(c)
	}
	stray := "slimdeadbeef"
	if out, err := inNetns(t, h.node.Netns, "ip", "link", "add", stray, "master", "slim0", "type", "veth", "peer", "name", "strayp"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	conf := h.conf("1.1.0", map[string]any{"cni.dev/valid-attachments": []map[string]string{{"containerID": keep.id, "ifname": "eth0"}}})
	if out, errOut, err := h.invoke("GC", cniContainer{}, "", "", conf); err != nil {
		t.Fatalf("GC: %v\n%s\n%s", err, out, errOut)
	}
	if got := h.records(); !slices.Equal(got, []string{keep.id}) {
		t.Errorf("records after GC: %v, want %s's only", got, keep.id)
	}
	if got := h.allocations(); len(got) != 1 {
		t.Errorf("allocations after GC: %v, want one", got)
	}
	if got := h.pluginVeths(); len(got) != 1 || got[0] == stray {
		t.Errorf("host ends after GC: %v, want keep's only", got)
	}
	h.waitForContainers([]string{keep.id}, 5*time.Second)
	h.del(keep, keep.path)
}

// cniExhaustion: with every address of the range taken, ADD fails with
// code 101 and a message that says what to do, STATUS says so too, and a
// DEL makes room.
func cniExhaustion(t *testing.T, h *cniHost) {
	conf := h.conf("1.1.0", map[string]any{"rangeStart": "198.19.1.200", "rangeEnd": "198.19.1.201"})
	cs := []cniContainer{h.newContainer(), h.newContainer(), h.newContainer()}
	for _, c := range cs[:2] {
		if out, errOut, err := h.invoke("ADD", c, c.path, "eth0", conf); err != nil {
			t.Fatalf("ADD %s: %v\n%s\n%s", c.id, err, out, errOut)
		}
	}
	out, _, err := h.invoke("ADD", cs[2], cs[2].path, "eth0", conf)
	if err == nil {
		t.Fatal("a third ADD into a range of two addresses succeeded")
	}
	if e := cniError(t, out); e.Code != 101 || !strings.Contains(e.Msg, "no free overlay address") || !strings.Contains(e.Msg, "198.19.1.200 to 198.19.1.201") {
		t.Errorf("exhausted ADD: %+v", e)
	}
	out, _, err = h.invoke("STATUS", cniContainer{}, "", "", conf)
	if e := cniError(t, out); err == nil || e.Code != 50 || !strings.Contains(e.Msg, "no free overlay address") {
		t.Errorf("STATUS with the range exhausted: %v %+v", err, e)
	}
	if len(h.allocations()) != 2 || len(h.pluginVeths()) != 2 {
		t.Errorf("the failed ADD left something: allocations %v, veths %v", h.allocations(), h.pluginVeths())
	}
	for _, step := range []struct {
		cmd string
		c   cniContainer
	}{{"DEL", cs[0]}, {"ADD", cs[2]}, {"DEL", cs[1]}, {"DEL", cs[2]}} {
		if out, errOut, err := h.invoke(step.cmd, step.c, step.c.path, "eth0", conf); err != nil {
			t.Fatalf("%s %s: %v\n%s\n%s", step.cmd, step.c.id, err, out, errOut)
		}
	}
}

// cniBadInput: a bad configuration or namespace is an error JSON with the
// spec's code and a message naming the mistake; nothing is left.
func cniBadInput(t *testing.T, h *cniHost) {
	c := h.newContainer()
	for _, tt := range []struct {
		name  string
		conf  []byte
		netns string
		code  uint
		want  string
	}{
		{"no routerConfig", h.conf("1.1.0", map[string]any{"routerConfig": nil}), c.path, 7, `"routerConfig" is required`},
		{"missing router config", h.conf("1.1.0", map[string]any{"routerConfig": "/nonexistent/router.json"}), c.path, 7, "/nonexistent/router.json"},
		{"not JSON", []byte(`{"cniVersion":"1.1.0","name":`), c.path, 6, ""},
		{"ipam given", h.conf("1.1.0", map[string]any{"ipam": map[string]string{"type": "host-local"}}), c.path, 7, `"ipam" is not used`},
		{"range outside the subnet", h.conf("1.1.0", map[string]any{"rangeStart": "198.19.2.10"}), c.path, 7, "is not in this host's subnet 198.19.1.0/24"},
		{"netns not a namespace", h.conf("1.1.0", nil), "/etc/hostname", 8, "/etc/hostname"},
		{"netns missing", h.conf("1.1.0", nil), "/run/netns/nonexistent-slim", 8, "nonexistent-slim"},
	} {
		out, _, err := h.invoke("ADD", c, tt.netns, "eth0", tt.conf)
		if err == nil {
			t.Errorf("%s: ADD succeeded", tt.name)
			continue
		}
		if e := cniError(t, out); e.Code != tt.code || !strings.Contains(e.Msg, tt.want) {
			t.Errorf("%s: error %+v, want code %d and %q", tt.name, e, tt.code, tt.want)
		}
	}

	// DEL without the router's configuration (slim uninstalled first)
	// still removes the interface and the address.
	h.add(c)
	noRouter := h.conf("1.1.0", map[string]any{"routerConfig": "/nonexistent/router.json"})
	if out, errOut, err := h.invoke("DEL", c, c.path, "eth0", noRouter); err != nil || !strings.Contains(errOut, "interface and address only") {
		t.Errorf("DEL without the router config: %v %q %q", err, out, errOut)
	}
	if v, a := h.pluginVeths(), h.allocations(); len(v)+len(a) > 0 {
		t.Errorf("DEL without the router config left veths %v, allocations %v", v, a)
	}
	h.del(c, c.path)
}

// cniRouterDown: with the router down, ADD still gives the container its
// overlay network and STATUS says the router is down; the router, once
// back, serves the container; a DEL while it is down is seen when it is
// back.
func cniRouterDown(t *testing.T, h *cniHost) {
	c := h.newContainer()
	r := h.l.killRouter(h.host)
	out, errOut, err := h.invoke("ADD", c, c.path, "eth0", h.conf("1.1.0", nil))
	if err != nil {
		t.Fatalf("ADD with the router down: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "slim: the router is not answering") {
		t.Errorf("ADD with the router down said nothing of it: %q", errOut)
	}
	if out, err := inNetns(t, c.netns, "ping", "-c", "1", "-W", "3", h.l.containerAddr("h2-c1")); err != nil {
		t.Errorf("with the router down, the container has no overlay network: %v\n%s", err, out)
	}
	out, _, err = h.invoke("STATUS", cniContainer{}, "", "", h.conf("1.1.0", nil))
	if e := cniError(t, out); err == nil || e.Code != 50 || !strings.Contains(e.Msg, "router of this host is not answering") {
		t.Errorf("STATUS with the router down: %+v", e)
	}
	h.l.restartRouter(h.host, r)
	h.waitForContainers([]string{c.id}, 5*time.Second)

	r = h.l.killRouter(h.host)
	h.del(c, c.path)
	h.l.restartRouter(h.host, r)
	h.waitForContainers(nil, 5*time.Second)
}

// cniOverlayDown: slim overlay down refuses while the router runs and while
// containers are attached; with --force it removes the devices, and the
// plugin's ADD, with the router down, sets the overlay up again as the
// router would: the new container reaches another host's container.
func cniOverlayDown(t *testing.T, h *cniHost) {
	overlayCmd := func(args ...string) (string, error) {
		cmd := exec.Command(slimPath, append([]string{"overlay"}, args...)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		err := h.node.Run(cmd)
		return out.String(), err
	}
	config := h.l.routerConfigPath(h.host)
	if out, err := overlayCmd("down", "--config", config); err == nil || !strings.Contains(out, "the router is running") {
		t.Errorf("overlay down with the router running: %v %q", err, out)
	}
	r := h.l.killRouter(h.host)
	if out, err := overlayCmd("down", "--config", config); err == nil || !strings.Contains(out, "container interface(s) are attached to slim0 (c1, c2)") {
		t.Errorf("overlay down with containers attached: %v %q", err, out)
	}
	if out, err := overlayCmd("down", "--config", config, "--force"); err != nil || out != "removed slim-vx\nremoved slim0\n" {
		t.Fatalf("overlay down --force: %v %q", err, out)
	}
	c := h.newContainer()
	h.add(c)
	if out, err := inNetns(t, c.netns, "ping", "-c", "1", "-W", "3", h.l.containerAddr("h2-c1")); err != nil {
		t.Errorf("a container added after overlay down does not reach h2-c1: %v\n%s", err, out)
	}
	if out, err := overlayCmd("up", "--config", config); err != nil || !strings.Contains(out, "nothing changed") {
		t.Errorf("overlay up after the plugin set it up: %v %q", err, out)
	}
	// The router, too, puts back what is missing when it starts.
	if out, err := inNetns(t, h.node.Netns, "ip", "route", "del", "198.19.2.0/24"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	h.l.restartRouter(h.host, r)
	h.waitForContainers([]string{c.id}, 5*time.Second)
	if out, _ := inNetns(t, h.node.Netns, "ip", "route", "show", "198.19.2.0/24"); !strings.Contains(out, "via 198.19.2.0 dev slim-vx onlink") {
		t.Errorf("the restarted router did not put back the route to h2's subnet: %q", out)
	}
	log, _ := os.ReadFile(filepath.Join(h.l.RouterDir(h.host), "router.log"))
	if !strings.Contains(string(log), `msg="overlay: added the route and entries of peer 198.18.0.2 (198.19.2.0/24)"`) {
		t.Errorf("the router did not log the route it put back:\n%s", tail(string(log), 20))
	}
	h.del(c, c.path)
}
