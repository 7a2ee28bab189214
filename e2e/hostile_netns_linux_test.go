package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	named "github.com/slimnet/slim/internal/netns"
)

// maxRecycleTries bounds the namespaces made to catch a recycled inode.
const maxRecycleTries = 150

// TestIntegrationRecycledNamespaceIsNotTheContainer attacks the router's
// identification of callers by namespace inode. A registered container's
// namespace is deleted without unregistering it (its runtime crashed);
// then new namespaces are made until one gets the old inode, which the
// kernel hands out again once a namespace is freed, and a process in it
// asks for host sockets. Had the router kept only the inode, that process
// would be served as the container: host sockets, the container's address,
// its policy. The router holds every registered namespace open, so the
// inode is never free while registered: the process is refused, told so in
// one 'slim:' line, and its connections are not accelerated.
func TestIntegrationRecycledNamespaceIsNotTheContainer(t *testing.T) {
	l := newLab(t, "rcy")
	victim := l.Hosts[0].Containers[1] // h1-c2, in the router's config
	inode := netnsInode(t, victim.Netns)
	serverAddr := l.containerAddr("h2-c1")
	server := l.start("h2-c1", true, binPath("churn"), "server", serverAddr, "7730")
	server.waitFor("listening on", 10*time.Second)
	l.waitForDirectory("h1", serverAddr, 7730, 10*time.Second)

	if err := named.Delete(victim.Netns); err != nil {
		t.Fatal(err)
	}
	intruder, reused := "", false
	for i := range maxRecycleTries {
		intruder = fmt.Sprintf("%s-r%d", l.Name, i)
		if err := named.Create(intruder); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { named.Delete(intruder) })
		if reused = netnsInode(t, intruder) == inode; reused {
			break
		}
		time.Sleep(5 * time.Millisecond) // the old namespace's clean-up is deferred
	}
	t.Logf("a new namespace got the deleted container's inode %d: %v (the router holds it: never)", inode, reused)

	client := l.startInNetns(intruder, "h1", true, binPath("churn"), "client", serverAddr, "7730", "2", "1")
	if err := client.wait(20 * time.Second); err != nil && !strings.Contains(client.output(), "tick") {
		t.Fatalf("client: %v\n%s", err, client.output()) // it exits 1 when no connection succeeded: that is fine
	}
	k := churnProgram{client}.lastTick()
	if reused || k.acc > 0 {
		t.Errorf("a process of namespace %s (inode reused: %v) got host sockets: %d connections accelerated", intruder, reused, k.acc)
	}
	warnings := linesWithPrefix(client.output(), "slim:")
	if len(warnings) != 1 || !strings.Contains(warnings[0], "does not accelerate this process") ||
		!strings.Contains(warnings[0], "is not a container registered with this router") {
		t.Errorf("the refused process printed %d slim lines, want one saying why:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	if k.err == 0 && k.ovl == 0 {
		t.Errorf("the client made no connection attempt: %+v\n%s", k, client.output())
	}
}

// TestIntegrationRouterStartsWithGoneNamespace: a container of the config
// whose namespace is gone (it exited while the router was down) is one
// warning when the router starts, and the others are served. Before, the
// router refused to start, leaving the whole host without one.
func TestIntegrationRouterStartsWithGoneNamespace(t *testing.T) {
	l := newLab(t, "gon")
	r := l.killRouter("h1")
	gone := l.Hosts[0].Containers[1] // h1-c2
	if err := named.Delete(gone.Netns); err != nil {
		t.Fatal(err)
	}
	l.restartRouter("h1", r)
	h := newCNIHost(l, "h1")
	served := h.routerContainers()
	if _, ok := served["h1-c1"]; !ok || len(served) != 1 {
		t.Errorf("the router serves %v, want h1-c1 only", served)
	}
	log, _ := os.ReadFile(filepath.Join(l.RouterDir("h1"), "router.log"))
	if n := strings.Count(string(log), "network namespaces gone"); n != 1 || !strings.Contains(string(log), "h1-c2 ("+named.Path(gone.Netns)+")") {
		t.Errorf("%d warnings about the gone namespace, want one naming h1-c2:\n%s", n, tail(string(log), 10))
	}
}
