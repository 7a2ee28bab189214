package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/control"
	named "github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/registration"
)

// cniNetwork is the network name of the tests' CNI configurations.
const cniNetwork = "slimtest"

// cniHost runs the slim CNI plugin on one lab host, as a runtime would:
// in the host's network namespace, from a CNI path where slim is "slim".
type cniHost struct {
	l       *testLab
	host    string
	node    lab.Node
	binDir  string // CNI_PATH
	dataDir string // allocations
	cache   string // libcni's cache
}

var netnsSeq atomic.Int64

func newCNIHost(l *testLab, host string) *cniHost {
	l.t.Helper()
	node, err := l.Node(host)
	if err != nil {
		l.t.Fatal(err)
	}
	h := &cniHost{l: l, host: host, node: node, binDir: l.t.TempDir(), dataDir: l.t.TempDir(), cache: l.t.TempDir()}
	if err := os.Symlink(slimPath, filepath.Join(h.binDir, "slim")); err != nil {
		l.t.Fatal(err)
	}
	return h
}

// conf is the network configuration, with extra fields (nil values drop
// a field).
func (h *cniHost) conf(version string, extra map[string]any) []byte {
	c := map[string]any{
		"cniVersion": version, "name": cniNetwork, "type": "slim",
		"routerConfig": h.l.routerConfigPath(h.host), "dataDir": h.dataDir,
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	data, err := json.Marshal(c)
	if err != nil {
		h.l.t.Fatal(err)
	}
	return data
}

// confList wraps a plugin configuration in a list for libcni.
func (h *cniHost) confList(version string) *libcni.NetworkConfigList {
	h.l.t.Helper()
	var plugin map[string]any
	json.Unmarshal(h.conf(version, nil), &plugin)
	delete(plugin, "cniVersion")
	delete(plugin, "name")
	data, _ := json.Marshal(map[string]any{"cniVersion": version, "name": cniNetwork, "plugins": []any{plugin}})
	list, err := libcni.NetworkConfFromBytes(data)
	if err != nil {
		h.l.t.Fatal(err)
	}
	return list
}

// libcni returns a libcni client whose calls must run in the host (do).
func (h *cniHost) libcni() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{h.binDir}, h.cache, nil)
}

// do runs fn in the host's network namespace: the plugin libcni starts
// there inherits it.
func (h *cniHost) do(fn func() error) error { return h.node.Do(fn) }

// container is a network namespace standing for a container.
type cniContainer struct {
	id    string
	netns string // its name in /run/netns
	path  string
}

// newContainer makes a named namespace (removed at the end of the test;
// the lab's down removes leftovers, which share its prefix).
func (h *cniHost) newContainer() cniContainer {
	h.l.t.Helper()
	seq := netnsSeq.Add(1)
	c := cniContainer{id: fmt.Sprintf("ctr%05d", seq), netns: fmt.Sprintf("%s-k%d", h.l.Name, seq)}
	c.path = named.Path(c.netns)
	if err := named.Create(c.netns); err != nil {
		h.l.t.Fatal(err)
	}
	h.l.t.Cleanup(func() { named.Delete(c.netns) })
	return c
}

// invoke runs the plugin once per the spec: CNI_* variables, conf on
// stdin. It returns stdout, stderr and the exit error.
func (h *cniHost) invoke(command string, c cniContainer, netnsPath, ifname string, conf []byte) (string, string, error) {
	cmd := exec.Command(filepath.Join(h.binDir, "slim"))
	cmd.Env = []string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + c.id, "CNI_NETNS=" + netnsPath,
		"CNI_IFNAME=" + ifname, "CNI_PATH=" + h.binDir, "PATH=" + os.Getenv("PATH")}
	cmd.Stdin = bytes.NewReader(conf)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	done := make(chan error, 1)
	go func() { done <- h.node.Run(cmd) }()
	select {
	case err := <-done:
		return out.String(), errOut.String(), err
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		h.l.t.Fatalf("the plugin's %s hangs", command)
		return "", "", nil
	}
}

// add runs ADD for c (eth0, cniVersion 1.1.0) and returns its result.
func (h *cniHost) add(c cniContainer) *current.Result {
	h.l.t.Helper()
	out, errOut, err := h.invoke("ADD", c, c.path, "eth0", h.conf("1.1.0", nil))
	if err != nil {
		h.l.t.Fatalf("ADD %s: %v\nstdout: %s\nstderr: %s", c.id, err, out, errOut)
	}
	res, err := current.NewResult([]byte(out))
	if err != nil {
		h.l.t.Fatalf("ADD %s: result %q: %v", c.id, out, err)
	}
	return res.(*current.Result)
}

// del runs DEL for c and fails the test if it fails.
func (h *cniHost) del(c cniContainer, netnsPath string) {
	h.l.t.Helper()
	if out, errOut, err := h.invoke("DEL", c, netnsPath, "eth0", h.conf("1.1.0", nil)); err != nil {
		h.l.t.Fatalf("DEL %s (netns %q): %v\nstdout: %s\nstderr: %s", c.id, netnsPath, err, out, errOut)
	}
}

// cniError parses the error JSON a failed call printed.
func cniError(t *testing.T, out string) types.Error {
	t.Helper()
	var e types.Error
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.Code == 0 || e.Msg == "" {
		t.Fatalf("not a CNI error (code and msg): %q (%v)", out, err)
	}
	return e
}

// addrOf is the address a result gave the container.
func addrOf(t *testing.T, res *current.Result) netip.Addr {
	t.Helper()
	if len(res.IPs) != 1 {
		t.Fatalf("result has %d addresses, want 1: %+v", len(res.IPs), res)
	}
	addr, _ := netip.AddrFromSlice(res.IPs[0].Address.IP.To4())
	return addr
}

// pluginVeths lists the host ends on the host's bridge with the plugin's
// names.
func (h *cniHost) pluginVeths() []string {
	h.l.t.Helper()
	var names []string
	err := h.do(func() error {
		bridge, err := netlink.LinkByName(overlay.BridgeName)
		if err != nil {
			return err
		}
		links, err := netlink.LinkList()
		for _, l := range links {
			if l.Attrs().MasterIndex == bridge.Attrs().Index && strings.HasPrefix(l.Attrs().Name, "slim") {
				names = append(names, l.Attrs().Name)
			}
		}
		return err
	})
	if err != nil {
		h.l.t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// allocations lists the addresses allocated on disk.
func (h *cniHost) allocations() []string {
	entries, _ := os.ReadDir(filepath.Join(h.dataDir, cniNetwork))
	var addrs []string
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			addrs = append(addrs, e.Name())
		}
	}
	return addrs
}

// records lists the names of the containers recorded for the router.
func (h *cniHost) records() []string {
	recs, errs := registration.List(h.l.RouterDir(h.host))
	if len(errs) > 0 {
		h.l.t.Errorf("records: %v", errs)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	return names
}

// routerContainers is what the router says it serves, by name.
func (h *cniHost) routerContainers() map[string]control.Container {
	h.l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snap, err := control.Fetch(ctx, filepath.Join(h.l.RouterDir(h.host), control.SocketName))
	if err != nil {
		h.l.t.Fatal(err)
	}
	out := map[string]control.Container{}
	for _, c := range snap.Containers {
		out[c.Name] = c
	}
	return out
}

// waitForContainers waits until the router serves exactly the containers
// of the lab's config and want (by name).
func (h *cniHost) waitForContainers(want []string, timeout time.Duration) {
	h.l.t.Helper()
	var got []string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = got[:0]
		for name, c := range h.routerContainers() {
			if c.Source != control.SourceConfig {
				got = append(got, name)
			}
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
	}
	h.l.t.Fatalf("the router of %s serves %v after %v, want %v", h.host, got, timeout, want)
}

// routerFDs counts the router's open descriptors, and among them the
// network namespaces it holds.
func (l *testLab) routerFDs(host string) (all, namespaces int) {
	l.t.Helper()
	r := l.mustFindRouter(host)
	dir := fmt.Sprintf("/proc/%d/fd", r.pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		l.t.Fatal(err)
	}
	for _, e := range entries {
		all++
		var fs unix.Statfs_t
		if unix.Statfs(filepath.Join(dir, e.Name()), &fs) == nil && fs.Type == unix.NSFS_MAGIC {
			namespaces++
		}
	}
	return all, namespaces
}

// inNetns runs argv in a named namespace and returns its output.
func inNetns(t *testing.T, netns string, argv ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := lab.Node{Name: netns, Netns: netns}.Run(cmd)
	return out.String(), err
}

// netnsInode is the inode of a named namespace.
func netnsInode(t *testing.T, netns string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(named.Path(netns), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
