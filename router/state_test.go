package router

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/slimnet/slim/router/protocol"
)

// TestStateSurvivesRestart: the listeners a router saved are those a
// restarted router directs connections to, but for any that name
// another host or another host's subnet (a state file is root's, yet it
// is no reason to send traffic elsewhere); a corrupt file is an error
// and no listener.
func TestStateSurvivesRestart(t *testing.T) {
	r := loopbackRouter(t)
	own := listener{Container: "self", Overlay: netip.MustParseAddrPort("198.19.1.2:80"), Host: netip.MustParseAddrPort("127.0.0.1:40000"), Added: time.Now()}
	r.listeners.add(own)
	r.listeners.add(listener{Container: "x", Overlay: netip.MustParseAddrPort("198.19.2.2:80"), Host: netip.MustParseAddrPort("127.0.0.1:40001")})
	r.listeners.add(listener{Container: "y", Overlay: netip.MustParseAddrPort("198.19.1.3:80"), Host: netip.MustParseAddrPort("127.0.0.9:40002")})
	if err := r.saveState(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(r.config.statePath()); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	restarted := newRouter(r.config, r.plan, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := restarted.restoreState(); err != nil {
		t.Fatal(err)
	}
	if ls, _ := restarted.listeners.snapshot(); len(ls) != 1 || ls[0].Overlay != own.Overlay || ls[0].Host != own.Host {
		t.Errorf("restored %+v, want only %s → %s", ls, own.Overlay, own.Host)
	}
	os.WriteFile(r.config.statePath(), []byte("{not json"), 0o600)
	if err := newRouter(r.config, r.plan, nil, r.log).restoreState(); err == nil || !strings.Contains(err.Error(), r.config.statePath()) {
		t.Errorf("corrupt state: %v, want an error naming the file", err)
	}
	os.Remove(r.config.statePath())
	if err := newRouter(r.config, r.plan, nil, r.log).restoreState(); err != nil {
		t.Errorf("no state file: %v", err)
	}
}

// TestSweepDropsGoneListeners: the sweep's view of the router drops the
// listeners whose host listener no longer listens (those added since the
// dump started stay), publishes the change, and gives the census the
// listeners, the directory and the containers' addresses.
func TestSweepDropsGoneListeners(t *testing.T) {
	r := loopbackRouter(t)
	started := time.Now()
	gone := listener{Container: "self", Overlay: netip.MustParseAddrPort("198.19.1.2:80"), Host: netip.MustParseAddrPort("127.0.0.1:40000"), HostCookie: 1, Added: started.Add(-time.Second)}
	alive := listener{Container: "self", Overlay: netip.MustParseAddrPort("198.19.1.2:81"), Host: netip.MustParseAddrPort("127.0.0.1:40001"), HostCookie: 2, Added: started.Add(-time.Second)}
	young := listener{Container: "self", Overlay: netip.MustParseAddrPort("198.19.1.2:82"), Host: netip.MustParseAddrPort("127.0.0.1:40002"), HostCookie: 3, Added: started.Add(time.Millisecond)}
	for _, l := range []listener{gone, alive, young} {
		r.listeners.add(l)
	}
	routerDirectory{r}.SetRemote(netip.MustParseAddr("127.0.0.2"), []protocol.Mapping{{Overlay: netip.MustParseAddrPort("198.19.2.2:443"), Host: netip.MustParseAddrPort("127.0.0.2:40000")}})
	host := sweepHost{r}
	host.DropGoneListeners(started, map[uint64]bool{2: true})
	ls, _ := r.listeners.snapshot()
	if len(ls) != 2 || ls[0].Overlay != alive.Overlay || ls[1].Overlay != young.Overlay {
		t.Errorf("after the sweep: %+v; want the live and the young listener", ls)
	}
	if state, _ := os.ReadFile(r.config.statePath()); strings.Contains(string(state), gone.Overlay.String()) {
		t.Error("the state file still lists the gone listener")
	}
	view := host.DirectoryView()
	if view.LocalByHost[alive.Host].Overlay != alive.Overlay || view.OverlayOf[netip.MustParseAddrPort("127.0.0.2:40000")] != netip.MustParseAddrPort("198.19.2.2:443") ||
		view.ContainerAddr["self"] != netip.MustParseAddr("198.19.1.2") {
		t.Errorf("directory view %+v", view)
	}
	mappings, version, _ := routerDirectory{r}.LocalMappings()
	if len(mappings) != 2 || version != r.listeners.currentVersion() {
		t.Errorf("local mappings %v (version %d of %d)", mappings, version, r.listeners.currentVersion())
	}
}
