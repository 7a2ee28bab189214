package secure

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/internal/testenv"
)

// enterTestRouterCgroup moves the test into a router cgroup of its own,
// as a router does, and loads the datapath pinned for it; everything is
// removed when the test ends.
func enterTestRouterCgroup(t *testing.T) (*Cgroups, string) {
	t.Helper()
	testenv.Integration(t)
	fs := Probe()
	for _, f := range fs.All() {
		if f.Required && !f.Present {
			testenv.KernelFeature(t, f.Name, errors.New(f.State()))
		}
	}
	if err := ProbeHelpers(); err != nil {
		testenv.KernelFeature(t, "BPF helpers of secure mode", err)
	}
	id := fmt.Sprintf("t%d", os.Getpid())
	bpffs, err := EnsureBPFFS()
	if err != nil {
		t.Fatal(err)
	}
	c, err := EnterRouterCgroup(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Release()
		if err := RemoveLeftovers(id); err != nil {
			t.Errorf("removing what the test left: %v", err)
		}
	})
	return c, PinDir(bpffs, id)
}

func pinnedLinkID(t *testing.T, path string) link.ID {
	t.Helper()
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

func liveSockets(t *testing.T, d *Datapath) int {
	t.Helper()
	n, complete, err := d.LiveSockets()
	if err != nil || !complete {
		t.Fatalf("live sockets: %d, complete %v, %v", n, complete, err)
	}
	return n
}

// TestIntegrationDatapathTakeOver: a datapath let go of (Close, as a
// failed start or a clean stop with sockets open does) leaves its pins;
// the next Load takes them over, switching the very same links to its
// programs (never detached, so never unguarded), and tracks the open
// sockets across: one closed later leaves the count. Only Remove unpins.
func TestIntegrationDatapathTakeOver(t *testing.T) {
	c, pins := enterTestRouterCgroup(t)
	first, err := Load(pins)
	if err != nil {
		t.Fatal(err)
	}
	if first.Adopted {
		t.Error("a first load took over pins")
	}
	if err := first.Configure(Settings{RouterCgroup: c.RouterID}); err != nil {
		t.Fatal(err)
	}
	if err := first.AttachRouter(c.RouterDir(), c.RouterID); err != nil {
		t.Fatal(err)
	}
	before := pinnedLinkID(t, filepath.Join(pins, "link_connect4"))
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.SetSocket(fd, KindPool, netip.MustParseAddrPort("198.19.1.2:0")); err != nil {
		t.Fatal(err)
	}
	if n := liveSockets(t, first); n != 1 {
		t.Errorf("%d live sockets, want the 1 marked", n)
	}
	first.Close()

	second, err := Load(pins)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Remove()
	if !second.Adopted {
		t.Error("the second load did not take over the pins")
	}
	if err := second.AttachRouter(c.RouterDir(), c.RouterID); err != nil {
		t.Fatal(err)
	}
	if after := pinnedLinkID(t, filepath.Join(pins, "link_connect4")); after != before {
		t.Errorf("the connect4 link was replaced (id %d, then %d), not updated in place", before, after)
	}
	if n := liveSockets(t, second); n != 1 {
		t.Errorf("%d live sockets after the take-over, want 1", n)
	}
	unix.Close(fd)
	if n := liveSockets(t, second); n != 0 {
		t.Errorf("%d live sockets after the socket closed, want 0", n)
	}
	if err := second.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pins); !os.IsNotExist(err) {
		t.Errorf("pins left after Remove: %v", err)
	}
}

// TestIntegrationRuleListsAllOrNothing: a list over the limit is refused
// before the kernel is asked; a prepared list is not in force until
// installed.
func TestIntegrationRuleListsAllOrNothing(t *testing.T) {
	_, pins := enterTestRouterCgroup(t)
	d, err := Load(pins)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	var limit *RulesLimitError
	if _, err := d.PrepareRules(make([]BPFRule, MaxRules+1)); !errors.As(err, &limit) {
		t.Errorf("%d rules: %v, want a RulesLimitError", MaxRules+1, err)
	}
	inForce := func() int {
		var id uint32
		if err := d.objs.SlimPolicy.Lookup(uint32(0), &id); err != nil {
			return 0
		}
		return int(id)
	}
	full, err := d.PrepareRules(make([]BPFRule, MaxRules))
	if err != nil {
		t.Fatal(err)
	}
	if inForce() != 0 {
		t.Error("a prepared list is in force before it is installed")
	}
	if err := d.InstallRules(full); err != nil {
		t.Fatal(err)
	}
	if inForce() == 0 {
		t.Error("no list in force after InstallRules")
	}
}

// TestIntegrationSetPoolSocketsMarksAndTracksTheBatch: a batch of pool
// sockets marked at once (one batch update of the open sockets) is each
// marked as the owner's pool socket and counted open until each closes.
func TestIntegrationSetPoolSocketsMarksAndTracksTheBatch(t *testing.T) {
	c, pins := enterTestRouterCgroup(t)
	d, err := Load(pins)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove()
	if err := d.Configure(Settings{RouterCgroup: c.RouterID}); err != nil {
		t.Fatal(err)
	}
	if err := d.AttachRouter(c.RouterDir(), c.RouterID); err != nil {
		t.Fatal(err)
	}
	var fds []int
	var cookies []uint64
	for range 3 {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
		if err != nil {
			t.Fatal(err)
		}
		fds, cookies = append(fds, fd), append(cookies, cookie)
	}
	if err := d.SetPoolSockets(fds, cookies, netip.MustParseAddr("198.19.1.2")); err != nil {
		t.Fatal(err)
	}
	if n := liveSockets(t, d); n != 3 {
		t.Errorf("%d live sockets, want the 3 marked", n)
	}
	for _, fd := range fds {
		var st struct {
			Kind, SelfIP, PeerIP uint32
			SelfPort, PeerPort   uint16
		}
		if err := d.objs.SlimSocks.Lookup(int32(fd), &st); err != nil || st.Kind != KindPool || st.SelfIP != be32(netip.MustParseAddr("198.19.1.2")) {
			t.Errorf("socket %d: state %+v, %v; want a pool socket of 198.19.1.2", fd, st, err)
		}
	}
	unix.Close(fds[0])
	if n := liveSockets(t, d); n != 2 {
		t.Errorf("%d live sockets after one closed, want 2", n)
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
}
