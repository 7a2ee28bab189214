package peers

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router/census"
	"github.com/slimnet/slim/router/protocol"
)

// The exchange in memory: routers on loopback addresses (127.0.0.x, all
// local on Linux), a fake Directory, the real census. No root.

// syncBuffer is a bytes.Buffer that a logger may write from another goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeDirectory is a router's directory in memory.
type fakeDirectory struct {
	mu      sync.Mutex
	local   []protocol.Mapping
	version uint64
	changed chan struct{}
	remote  map[netip.Addr][]protocol.Mapping
	set     chan struct{} // closed and replaced at each SetRemote
}

func newFakeDirectory(local ...protocol.Mapping) *fakeDirectory {
	return &fakeDirectory{local: local, version: 1, changed: make(chan struct{}), remote: map[netip.Addr][]protocol.Mapping{}, set: make(chan struct{})}
}

func (d *fakeDirectory) LocalMappings() ([]protocol.Mapping, uint64, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.local), d.version, d.changed
}

func (d *fakeDirectory) SetRemote(peer netip.Addr, mappings []protocol.Mapping) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.remote[peer] = mappings
	close(d.set)
	d.set = make(chan struct{})
}

// setLocal changes this host's listeners and returns their version.
func (d *fakeDirectory) setLocal(local ...protocol.Mapping) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.local = local
	d.version++
	close(d.changed)
	d.changed = make(chan struct{})
	return d.version
}

func (d *fakeDirectory) remoteCount(peer netip.Addr) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.remote[peer])
}

// waitRemote waits until the peer's listeners are want.
func (d *fakeDirectory) waitRemote(t *testing.T, peer netip.Addr, want []protocol.Mapping) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		d.mu.Lock()
		got, set := d.remote[peer], d.set
		d.mu.Unlock()
		if slices.Equal(got, want) {
			return
		}
		select {
		case <-set:
		case <-deadline:
			t.Fatalf("the peer's listeners are %v, want %v", got, want)
		}
	}
}

// acceptingExchange is the exchange of a router (192.0.2.1) whose only
// peer is 127.0.0.1 (10.1.1.0/24), logging to logs.
func acceptingExchange(t *testing.T, logs *syncBuffer) (*Exchange, *fakeDirectory) {
	t.Helper()
	dir := newFakeDirectory()
	e := New(Config{
		Self:      overlay.HostPlan{Underlay: netip.MustParseAddr("192.0.2.1"), Subnet: netip.MustParsePrefix("10.1.0.0/24")},
		Peers:     []overlay.HostPlan{{Underlay: netip.MustParseAddr("127.0.0.1"), Subnet: netip.MustParsePrefix("10.1.1.0/24")}},
		Key:       testKey(t, 1),
		Directory: dir, Clients: census.New(),
		Log: slog.New(slog.NewTextHandler(logs, nil)),
	})
	return e, dir
}

func pushDirectory(t *testing.T, pusher *peerConn, version uint64, mappings ...protocol.Mapping) {
	t.Helper()
	payload, err := protocol.EncodeDirectory(version, mappings)
	if err != nil {
		t.Fatal(err)
	}
	if err := pusher.write(protocol.Message{Type: protocol.TypeDirectory, ID: directoryID(false), Payload: payload}); err != nil {
		t.Fatal(err)
	}
}

// TestServePeerRefusesForeignMappings: an authenticated peer (127.0.0.1,
// subnet 10.1.1.0/24) that announces another host's container, points at
// another host, or gives overlay port 0, is dropped, and the directory it sent
// before stays as it was.
func TestServePeerRefusesForeignMappings(t *testing.T) {
	good := protocol.Mapping{Overlay: netip.MustParseAddrPort("10.1.1.5:80"), Host: netip.MustParseAddrPort("127.0.0.1:40000")}
	tests := []struct {
		name string
		bad  protocol.Mapping
		says string
	}{
		{"another host's container", protocol.Mapping{Overlay: netip.MustParseAddrPort("10.1.0.5:80"), Host: good.Host}, "not in peer 127.0.0.1's subnet"},
		{"outside the overlay", protocol.Mapping{Overlay: netip.MustParseAddrPort("192.0.2.7:80"), Host: good.Host}, "not in peer 127.0.0.1's subnet"},
		{"a third host", protocol.Mapping{Overlay: good.Overlay, Host: netip.MustParseAddrPort("192.0.2.9:40000")}, "not peer 127.0.0.1's own"},
		{"this router's host", protocol.Mapping{Overlay: good.Overlay, Host: netip.MustParseAddrPort("192.0.2.1:40000")}, "not peer 127.0.0.1's own"},
		{"overlay port 0", protocol.Mapping{Overlay: netip.MustParseAddrPort("10.1.1.6:0"), Host: good.Host}, "port 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			r, dir := acceptingExchange(t, &logs)
			p, a := loopbackPair(t)
			done := make(chan struct{})
			go func() { defer close(done); r.servePeer(a) }()
			pusher, err := dialPeerConn(p, testKey(t, 1), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			pushDirectory(t, pusher, 1, good)
			if ack, err := pusher.read(); err != nil || ack.Type != protocol.TypeDirectoryAck {
				t.Fatalf("good directory: %v, %v\n%s", ack.Type, err, logs.String())
			}
			pushDirectory(t, pusher, 2, good, tt.bad)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the router kept the connection of a peer that announced " + tt.name)
			}
			if out := logs.String(); !strings.Contains(out, "refusing directory") || !strings.Contains(out, tt.says) {
				t.Errorf("log %q does not say it refused the directory because %q", out, tt.says)
			}
			if n := dir.remoteCount(netip.MustParseAddr("127.0.0.1")); n != 1 {
				t.Errorf("the peer has %d listeners after the refused directory, want its 1 from before", n)
			}
		})
	}
}

// TestServePeerRefusesUnknownAddress: a connection to the peer port from
// an address that is no peer's underlay address is closed before anything
// is read, with a warning naming it.
func TestServePeerRefusesUnknownAddress(t *testing.T) {
	var logs syncBuffer
	r, dir := acceptingExchange(t, &logs)
	r.config.Peers[0].Underlay = netip.MustParseAddr("192.0.2.2") // 127.0.0.1 is no longer a peer
	p, a := loopbackPair(t)
	done := make(chan struct{})
	go func() { defer close(done); r.servePeer(a) }()
	pushDirectory(t, &peerConn{conn: p}, 1, protocol.Mapping{
		Overlay: netip.MustParseAddrPort("10.1.1.5:80"), Host: netip.MustParseAddrPort("127.0.0.1:40000"),
	})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the router kept a connection from an address that is no peer's")
	}
	if out := logs.String(); !strings.Contains(out, "refusing directory from an unknown host") || !strings.Contains(out, "127.0.0.1") {
		t.Errorf("log %q does not name the refused address", out)
	}
	if len(dir.remote) != 0 {
		t.Errorf("the router published %v from an unknown host", dir.remote)
	}
}

// TestServePeerDropsWrongKey runs the accepting router's loop against a
// pusher with another key: the directory is not applied, and the warning
// names the peer.
func TestServePeerDropsWrongKey(t *testing.T) {
	var logs syncBuffer
	loopback := netip.MustParseAddr("127.0.0.1")
	r, dir := acceptingExchange(t, &logs)
	p, a := loopbackPair(t)
	done := make(chan struct{})
	go func() { defer close(done); r.servePeer(a) }()
	pusher, err := dialPeerConn(p, testKey(t, 2), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pusher.write(directoryMsg(1))
	<-done
	if n := dir.remoteCount(loopback); n != 0 {
		t.Errorf("the router applied %d mappings from an unauthenticated peer", n)
	}
	if out := logs.String(); !strings.Contains(out, "failed authentication") || !strings.Contains(out, "127.0.0.1") {
		t.Errorf("log %q does not say that peer 127.0.0.1 failed authentication", out)
	}
}

func TestCheckPeerMappings(t *testing.T) {
	peer := overlay.HostPlan{Underlay: netip.MustParseAddr("198.18.0.2"), Subnet: netip.MustParsePrefix("198.19.2.0/24")}
	good := protocol.Mapping{Overlay: netip.MustParseAddrPort("198.19.2.2:80"), Host: netip.MustParseAddrPort("198.18.0.2:40000")}
	if err := checkPeerMappings(peer, []protocol.Mapping{good}); err != nil {
		t.Fatal(err)
	}
	bad := []protocol.Mapping{
		{Overlay: netip.MustParseAddrPort("198.19.1.2:80"), Host: good.Host},                               // another host's container
		{Overlay: good.Overlay, Host: netip.MustParseAddrPort("198.18.0.9:40000")},                         // traffic sent elsewhere
		{Overlay: netip.MustParseAddrPort("198.19.2.2:80"), Host: netip.MustParseAddrPort("198.18.0.1:1")}, // to us
	}
	for _, m := range bad {
		if err := checkPeerMappings(peer, []protocol.Mapping{good, m}); err == nil {
			t.Errorf("peer allowed to announce %s → %s", m.Overlay, m.Host)
		}
	}
}

// loopbackRouters are two routers' exchanges on 127.0.0.1 and 127.0.0.2,
// with one peer port, each with a fake directory.
type loopbackRouter struct {
	host overlay.HostPlan
	dir  *fakeDirectory
	ex   *Exchange
}

func loopbackRouters(t *testing.T, keyA, keyB byte) (a, b *loopbackRouter) {
	t.Helper()
	hosts := []overlay.HostPlan{
		{Underlay: netip.MustParseAddr("127.0.0.1"), Subnet: netip.MustParsePrefix("10.1.1.0/24")},
		{Underlay: netip.MustParseAddr("127.0.0.2"), Subnet: netip.MustParsePrefix("10.1.2.0/24")},
	}
	var listeners [2]*net.TCPListener
	var port uint16
	for try := 0; listeners[1] == nil; try++ {
		if try == 20 {
			t.Fatal("no port free on both 127.0.0.1 and 127.0.0.2")
		}
		l0, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: hosts[0].Underlay.AsSlice()})
		if err != nil {
			t.Fatal(err)
		}
		port = uint16(l0.Addr().(*net.TCPAddr).Port)
		l1, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: hosts[1].Underlay.AsSlice(), Port: int(port)})
		if err != nil {
			l0.Close()
			continue
		}
		listeners = [2]*net.TCPListener{l0, l1}
	}
	routers := make([]*loopbackRouter, 2)
	for i, key := range []byte{keyA, keyB} {
		dir := newFakeDirectory(protocol.Mapping{
			Overlay: netip.AddrPortFrom(hosts[i].Subnet.Addr().Next().Next(), 80),
			Host:    netip.AddrPortFrom(hosts[i].Underlay, 40000),
		})
		routers[i] = &loopbackRouter{host: hosts[i], dir: dir, ex: New(Config{
			Self: hosts[i], Peers: []overlay.HostPlan{hosts[1-i]}, Port: port, Key: testKey(t, key),
			Listener: listeners[i], Directory: dir, Clients: census.New(),
			Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})}
	}
	return routers[0], routers[1]
}

// run runs the exchanges until the test ends (or stop), and checks that
// each Run returns.
func run(t *testing.T, exs ...*Exchange) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, len(exs))
	for _, e := range exs {
		go func() { e.Run(ctx); done <- struct{}{} }()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			for range exs {
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					t.Error("Run did not return within 10 s of its context's end")
					return
				}
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestExchangeBetweenRouters: two routers exchange their listeners, each
// acknowledges what it published (WaitPublished returns without waiting
// its bound), a change reaches the peer, the control API sees the peer
// connected; once stopped, Run returns and the peer is shown down.
func TestExchangeBetweenRouters(t *testing.T) {
	a, b := loopbackRouters(t, 1, 1)
	stop := run(t, a.ex, b.ex)
	aListeners, _, _ := a.dir.LocalMappings()
	b.dir.waitRemote(t, a.host.Underlay, aListeners)
	bListeners, _, _ := b.dir.LocalMappings()
	a.dir.waitRemote(t, b.host.Underlay, bListeners)

	moved := protocol.Mapping{Overlay: netip.MustParseAddrPort("10.1.1.9:443"), Host: netip.MustParseAddrPort("127.0.0.1:40001")}
	version := a.dir.setLocal(aListeners[0], moved)
	waited := time.Now()
	a.ex.WaitPublished(version)
	if b.dir.remoteCount(a.host.Underlay) != 2 {
		t.Fatalf("WaitPublished(%d) returned before the peer published the change: %v", version, b.dir.remote)
	}
	if took := time.Since(waited); took >= peerAckTimeout {
		t.Logf("WaitPublished took %v (the bound: the ack came late on a loaded machine)", took)
	}
	peers := a.ex.Peers()
	if len(peers) != 1 || peers[0].Host != b.host.Underlay || peers[0].Subnet != b.host.Subnet || !peers[0].Connected || peers[0].LastDirectory.IsZero() {
		t.Errorf("Peers() = %+v, want b connected, with a directory", peers)
	}
	stop()
	if p := a.ex.Peers(); p[0].Connected {
		t.Error("the peer is shown connected after the exchange stopped")
	}
}

// TestExchangeRefusesAnotherKey: routers with different cluster keys
// exchange nothing; each keeps retrying and stops when told.
func TestExchangeRefusesAnotherKey(t *testing.T) {
	a, b := loopbackRouters(t, 1, 2)
	stop := run(t, a.ex, b.ex)
	time.Sleep(500 * time.Millisecond)
	stop()
	if a.dir.remoteCount(b.host.Underlay) != 0 || b.dir.remoteCount(a.host.Underlay) != 0 {
		t.Errorf("routers with different keys exchanged listeners: %v, %v", a.dir.remote, b.dir.remote)
	}
}

// TestWaitPublishedBounded: a LISTEN waits for a peer that never
// acknowledges (it is expected, not yet known down) at most
// peerAckTimeout, and not at all once the peer is known unreachable.
func TestWaitPublishedBounded(t *testing.T) {
	var logs syncBuffer
	e, _ := acceptingExchange(t, &logs)
	start := time.Now()
	e.WaitPublished(1)
	if took := time.Since(start); took < peerAckTimeout || took > peerAckTimeout+5*time.Second {
		t.Errorf("WaitPublished for a silent peer took %v, want about %v", took, peerAckTimeout)
	}
	e.health.setUnreachable(netip.MustParseAddr("127.0.0.1"), true)
	start = time.Now()
	e.WaitPublished(2)
	if took := time.Since(start); took >= peerAckTimeout {
		t.Errorf("WaitPublished waited %v for a peer known unreachable", took)
	}
}

// TestRunStopsWithPeerDown: Run returns promptly when stopped while its
// peer cannot be reached (the push session is between retries or
// dialing), and closes its listener.
func TestRunStopsWithPeerDown(t *testing.T) {
	a, b := loopbackRouters(t, 1, 1)
	b.ex.config.Listener.Close() // b never runs: a finds nobody there
	stop := run(t, a.ex)
	time.Sleep(300 * time.Millisecond)
	stop()
	if _, err := net.Dial("tcp4", a.ex.config.Listener.Addr().String()); err == nil {
		t.Error("the peer port still accepts after Run returned")
	}
	if p := a.ex.Peers(); p[0].Connected {
		t.Error("an unreachable peer is shown connected")
	}
}
