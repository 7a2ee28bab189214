package router

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/internal/testenv"
	"github.com/slimnet/slim/router/registration"
)

func scratchNamespace(t *testing.T) *netns.Scratch {
	t.Helper()
	scratch, err := netns.NewScratch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { scratch.Close() })
	return scratch
}

func spec(name, netns, addr string) control.ContainerSpec {
	return control.ContainerSpec{Name: name, Netns: netns, Addr: addr}
}

// TestIntegrationContainerAddAndDelete: container_add registers a
// container at once (the shim's caller lookup finds it) and saves its
// record; adding it again is fine; container_del unregisters it, removes
// the record, and is fine twice.
func TestIntegrationContainerAddAndDelete(t *testing.T) {
	testenv.Integration(t)
	r := containerTestRouter(t, nil)
	api := containerAPI{r}
	scratch := scratchNamespace(t)
	ino, _ := namespaceInode(scratch.Path())

	got, err := api.AddContainer(spec("web", scratch.Path(), "198.19.1.7"))
	if err != nil || got.Addr != "198.19.1.7" {
		t.Fatalf("AddContainer = %+v, %v", got, err)
	}
	c := r.containers.lookup(ino)
	if c == nil || c.Name != "web" || r.checkRegistered(caller{Netns: ino, Container: c}) != nil {
		t.Fatalf("lookup of the namespace after AddContainer: %+v", c)
	}
	rec, err := registration.Read(r.config.Dir, "web")
	if err != nil || rec.NetnsInode != ino || rec.Addr.String() != "198.19.1.7" {
		t.Errorf("saved record %+v, %v", rec, err)
	}
	st, _ := os.Stat(registration.Dir(r.config.Dir))
	if st == nil || st.Mode().Perm() != 0o700 {
		t.Errorf("records directory mode %v, want 0700", st)
	}
	if _, err := api.AddContainer(spec("web", scratch.Path(), "198.19.1.7")); err != nil {
		t.Errorf("adding the same container again: %v", err)
	}

	n, err := api.DeleteContainer("web")
	if err != nil || n != 0 {
		t.Errorf("DeleteContainer = %d, %v", n, err)
	}
	if r.containers.lookup(ino) != nil || !c.removed.Load() {
		t.Error("the container is still served after DeleteContainer")
	}
	if err := r.checkRegistered(caller{Netns: ino, Container: c}); err == nil || !strings.Contains(err.Error(), "container web was unregistered") {
		t.Errorf("a shim connection identified before the delete: %v", err)
	}
	if _, err := registration.Read(r.config.Dir, "web"); !os.IsNotExist(err) {
		t.Errorf("record after DeleteContainer: %v", err)
	}
	if n, err := api.DeleteContainer("web"); err != nil || n != 0 {
		t.Errorf("second DeleteContainer = %d, %v; want 0, nil", n, err)
	}
}

// TestIntegrationContainerAddRefusals: every bad registration gets an
// error naming what is wrong, and nothing is registered or saved. Among
// them, hostile ones from a control-group member: a name that climbs out
// of DIR/containers, a FIFO (opening it for real would block the router),
// another kind of namespace, the host's own namespace.
func TestIntegrationContainerAddRefusals(t *testing.T) {
	testenv.Integration(t)
	r := containerTestRouter(t, nil)
	api := containerAPI{r}
	a, b := scratchNamespace(t), scratchNamespace(t)
	if _, err := api.AddContainer(spec("a", a.Path(), "198.19.1.2")); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec control.ContainerSpec
		want string
	}{
		{spec("../escape", b.Path(), "198.19.1.3"), `container name "../escape"`},
		{spec("b", "relative/ns", "198.19.1.3"), "must be an absolute path"},
		{spec("b", b.Path(), "198.19.2.3"), "is not in this host's subnet 198.19.1.0/24"},
		{spec("b", b.Path(), "198.19.1.1"), "is the host's gateway"},
		{spec("b", b.Path(), "banana"), `addr "banana" is not an IPv4 address`},
		{spec("a", b.Path(), "198.19.1.3"), "container a is registered already"},
		{spec("b", a.Path(), "198.19.1.3"), "is the network namespace of container a too"},
		{spec("b", b.Path(), "198.19.1.2"), "address 198.19.1.2 is container a's"},
		{spec("b", fifo, "198.19.1.3"), "not a namespace file"},
		{spec("b", "/proc/self/ns/mnt", "198.19.1.3"), "another kind of namespace"},
		{spec("b", "/proc/self/ns/net", "198.19.1.3"), "the router's own (the host's) network namespace"},
		{spec("b", "/nonexistent/ns", "198.19.1.3"), "no such file or directory"},
	}
	for _, tt := range tests {
		done := make(chan error, 1)
		go func() { _, err := api.AddContainer(tt.spec); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("AddContainer(%+v) = %v, want an error containing %q", tt.spec, err, tt.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("AddContainer(%+v) hangs", tt.spec)
		}
	}
	if names := containerNames(r); names != "a" {
		t.Errorf("registered after the refusals: %s, want a", names)
	}
	records, _ := registration.List(r.config.Dir)
	if len(records) != 1 {
		t.Errorf("records after the refusals: %+v, want a's only", records)
	}
	if _, err := os.Stat(filepath.Join(r.config.Dir, "escape.json")); err == nil {
		t.Error("a name with ../ wrote outside DIR/containers")
	}
}

func containerNames(r *Router) string {
	var names []string
	for _, c := range r.containers.list() {
		names = append(names, c.Name)
	}
	return strings.Join(names, ",")
}

// TestIntegrationContainerDeleteRefusesConfigContainer: a container of the
// config file is not unregistered through the API.
func TestIntegrationContainerDeleteRefusesConfigContainer(t *testing.T) {
	testenv.Integration(t)
	scratch := scratchNamespace(t)
	r := containerTestRouter(t, []ContainerConfig{{Name: "c1", Netns: scratch.Path(), Addr: "198.19.1.2"}})
	if err := r.registerContainers(); err != nil {
		t.Fatal(err)
	}
	if _, err := (containerAPI{r}).DeleteContainer("c1"); err == nil || !strings.Contains(err.Error(), "in the router's configuration file") {
		t.Errorf("DeleteContainer of a config container: %v", err)
	}
	if containerNames(r) != "c1" {
		t.Error("the config container was unregistered")
	}
}

// TestIntegrationRegistrationsSurviveRestart: a new router with the same
// directory serves the containers the old one registered; one whose
// namespace is gone (or whose path now names another namespace), and a
// config container whose namespace is gone, are a warning each, and the
// rest are served.
func TestIntegrationRegistrationsSurviveRestart(t *testing.T) {
	testenv.Integration(t)
	kept, gone, other := scratchNamespace(t), scratchNamespace(t), scratchNamespace(t)
	// Named through a link that goes away, as /run/netns/NAME does.
	gonePath := filepath.Join(t.TempDir(), "gone")
	if err := os.Symlink(gone.Path(), gonePath); err != nil {
		t.Fatal(err)
	}
	first := containerTestRouter(t, nil)
	for i, path := range []string{kept.Path(), gonePath} {
		if _, err := (containerAPI{first}).AddContainer(spec(fmt.Sprintf("c%d", i), path, fmt.Sprintf("198.19.1.%d", 10+i))); err != nil {
			t.Fatal(err)
		}
	}
	swapped, _ := registration.Read(first.config.Dir, "c1")
	swapped.Name, swapped.Netns, swapped.Addr = "swapped", other.Path(), swapped.Addr.Next().Next()
	if err := registration.Write(first.config.Dir, swapped); err != nil { // other's path, c1's inode
		t.Fatal(err)
	}
	for _, c := range first.containers.list() { // the first router stops
		c.releaseNow()
	}
	os.Remove(gonePath)
	gone.Close()

	second := containerTestRouter(t, []ContainerConfig{{Name: "cfg", Netns: gonePath, Addr: "198.19.1.40"}})
	second.config.Dir = first.config.Dir
	if err := second.registerContainers(); err != nil {
		t.Fatalf("a router whose saved and configured namespaces are partly gone: %v", err)
	}
	if names := containerNames(second); names != "c0" {
		t.Errorf("served after the restart: %q, want c0", names)
	}
	logs := logOf(second)
	for _, want := range []string{"containers=\"cfg (" + gonePath + ")\"", "container c1 is not served: its network namespace " + gonePath + " is gone",
		"container swapped is not served: " + other.Path() + " is now another network namespace"} {
		if strings.Count(logs, want) != 1 {
			t.Errorf("log has %d lines with %q, want 1:\n%s", strings.Count(logs, want), want, logs)
		}
	}
	second.syncRecords()
	second.syncRecords()
	if n := strings.Count(logOf(second), "level=WARN"); n != 3 {
		t.Errorf("%d warnings after two more syncs, want the 3 of the start:\n%s", n, logOf(second))
	}
}

// TestIntegrationRecordsAreTheTruth: a record written by another program
// (the CNI plugin) is registered at the next sync; one removed is
// unregistered.
func TestIntegrationRecordsAreTheTruth(t *testing.T) {
	testenv.Integration(t)
	r := containerTestRouter(t, nil)
	scratch := scratchNamespace(t)
	ino, _ := namespaceInode(scratch.Path())
	rec := registration.Record{Name: "cni1", Netns: scratch.Path(), NetnsInode: ino, Addr: mustParseAddr(t, "198.19.1.99"), ContainerID: "abc", IfName: "eth0"}
	if err := registration.Write(r.config.Dir, rec); err != nil {
		t.Fatal(err)
	}
	r.syncRecords()
	c := r.containers.lookup(ino)
	if c == nil || c.Name != "cni1" || c.ContainerID != "abc" || c.Source != control.SourceRuntime {
		t.Fatalf("after a sync: %+v", c)
	}
	if _, err := registration.Remove(r.config.Dir, "cni1"); err != nil {
		t.Fatal(err)
	}
	r.syncRecords()
	if r.containers.lookup(ino) != nil || !c.removed.Load() {
		t.Error("a container whose record was removed is still served")
	}
}
