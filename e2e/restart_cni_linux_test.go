package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/slimnet/slim/internal/testenv"
	"github.com/slimnet/slim/lab"
	"github.com/slimnet/slim/overlay"
)

// TestIntegrationRouterRestartKeepsContainers: containers the CNI plugin
// added while the router ran are still registered after the router stops
// cleanly and starts again: a client in one of them is accelerated again.
// While the router is stopped, its host keeps the overlay devices and the
// containers their overlay network.
func TestIntegrationRouterRestartKeepsContainers(t *testing.T) {
	testenv.Tools(t, "ping")
	l := newLab(t, "rsc")
	h := newCNIHost(l, "h1")
	var ids []string
	var client cniContainer
	for i := range 3 {
		c := h.newContainer()
		h.add(c)
		ids = append(ids, c.id)
		if i == 0 {
			client = c
		}
	}
	h.waitForContainers(ids, 5*time.Second)
	serverAddr := l.containerAddr("h2-c1")
	server := l.start("h2-c1", true, binPath("churn"), "server", serverAddr, "7720")
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h1", serverAddr, 7720, 10*time.Second)
	traffic := churnProgram{l.startInNetns(client.netns, "h1", true, binPath("churn"), "client", serverAddr, "7720", "2", "90")}
	before := traffic.waitForTick(func(k churnTick) bool { return k.acc >= 50 }, 20*time.Second)

	r := l.stopRouterCleanly("h1")
	for _, name := range []string{overlay.BridgeName, overlay.VXLANName} {
		if err := h.do(func() error { _, err := netlink.LinkByName(name); return err }); err != nil {
			t.Errorf("after a clean stop of the router, %s is gone: %v", name, err)
		}
	}
	if out, err := inNetns(t, client.netns, "ping", "-c", "1", "-W", "3", serverAddr); err != nil {
		t.Errorf("with the router stopped, the container lost its overlay network: %v\n%s", err, out)
	}
	stopped := traffic.lastTick()
	l.restartRouter("h1", r)
	h.waitForContainers(ids, 5*time.Second)
	l.waitForDirectory("h1", serverAddr, 7720, 30*time.Second)
	after := traffic.waitForTick(func(k churnTick) bool { return k.acc >= stopped.acc+100 }, 30*time.Second)
	t.Logf("traffic before the stop %+v, at the restart %+v, after %+v", before, stopped, after)
	if after.err != before.err {
		t.Errorf("%d connections failed across the router's restart", after.err-before.err)
	}
	log, _ := os.ReadFile(filepath.Join(l.RouterDir("h1"), "router.log"))
	restarted := string(log)[strings.LastIndex(string(log), `msg="router serving"`):]
	if strings.Contains(restarted, "level=WARN") {
		t.Errorf("the restarted router warned:\n%s", restarted)
	}
	for _, id := range ids {
		h.del(cniContainer{id: id}, "")
	}
}

// stopRouterCleanly stops host's router with SIGTERM, waits until it has
// exited and returns its command line for restartRouter.
func (l *testLab) stopRouterCleanly(host string) routerProc {
	l.t.Helper()
	r := l.mustFindRouter(host)
	if err := syscall.Kill(r.pid, syscall.SIGTERM); err != nil {
		l.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !zombie(r.pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			l.t.Fatalf("router of %s (pid %d) still runs 10 s after SIGTERM", host, r.pid)
		}
	}
	return r
}

// startInNetns is start for a namespace that is no lab node (a container
// of the CNI plugin's), served by the router of host.
func (l *testLab) startInNetns(netns, host string, accelerated bool, argv ...string) *program {
	l.t.Helper()
	if accelerated {
		argv = append([]string{slimPath, "exec", "--"}, argv...)
	}
	p := &program{t: l.t, name: netns + ": " + strings.Join(argv, " "), exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), "SLIM_ROUTER_SOCK="+filepath.Join(l.RouterDir(host), "router.sock"))
	p.cmd.Stdout = &lockedWriter{p: p}
	p.cmd.Stderr = p.cmd.Stdout
	if err := (lab.Node{Name: netns, Netns: netns}).Start(p.cmd); err != nil {
		l.t.Fatalf("%s: %v", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	l.t.Cleanup(p.stop)
	return p
}
