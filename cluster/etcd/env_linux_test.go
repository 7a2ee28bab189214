package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/internal/etcdrun"
	"github.com/slimnet/slim/internal/testenv"
)

// Timings of the stores under test: short, so that expiries happen
// within a test; the bounds tests wait for are generous multiples.
const (
	testTTL   = 2 // seconds
	testGrace = 5 // seconds
	patience  = 30 * time.Second
)

var testNetwork = cluster.Network{Overlay: netip.MustParsePrefix("198.19.0.0/16"), HostBits: 24}

// shared is one etcd for the tests that neither stop nor kill members;
// each test uses a prefix of its own.
var shared struct {
	once    sync.Once
	scratch *etcdrun.Scratch
	dir     string
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.scratch != nil {
		shared.scratch.Close()
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// sharedEtcd is the shared etcd, started by the first test that needs it.
func sharedEtcd(t *testing.T) *etcdrun.Scratch {
	t.Helper()
	testenv.Integration(t)
	testenv.Tools(t, etcdrun.Binary)
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "slim-etcd-test-"); shared.err == nil {
			shared.scratch, shared.err = etcdrun.NewScratch(shared.dir, 1)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.scratch
}

// ownEtcd is a cluster of size members for this test alone.
func ownEtcd(t *testing.T, size int) *etcdrun.Scratch {
	t.Helper()
	testenv.Integration(t)
	testenv.Tools(t, etcdrun.Binary)
	s, err := etcdrun.NewScratch(t.TempDir(), size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var prefixes atomic.Int64

// testPrefix is a key prefix no other test of this process uses.
func testPrefix() string {
	return fmt.Sprintf("/slim-test-%d-%d/", os.Getpid(), prefixes.Add(1))
}

// link is a store's way to etcd that a test can cut (a partition: open
// connections are closed, new ones hang until the dial gives up) and
// heal.
type link struct {
	scratch *etcdrun.Scratch
	mu      sync.Mutex
	cut     bool
	healed  chan struct{}
	conns   []net.Conn
}

func newLink(s *etcdrun.Scratch) *link { return &link{scratch: s, healed: make(chan struct{})} }

func (l *link) dial(ctx context.Context, addr string) (net.Conn, error) {
	l.mu.Lock()
	cut, healed := l.cut, l.healed
	l.mu.Unlock()
	if cut {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-healed:
		}
	}
	conn, err := l.scratch.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns = append(l.conns, conn)
	l.mu.Unlock()
	return conn, nil
}

func (l *link) partition() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

func (l *link) heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = false
	close(l.healed)
	l.healed = make(chan struct{})
}

// env is a set of stores of one cluster (one prefix) under test.
type env struct {
	t       *testing.T
	scratch *etcdrun.Scratch
	prefix  string
	grace   int
}

func newEnv(t *testing.T, s *etcdrun.Scratch) *env {
	return &env{t: t, scratch: s, prefix: testPrefix(), grace: testGrace}
}

// store opens a store of the cluster as user, through l if not nil.
func (e *env) store(user string, l *link) *Store {
	e.t.Helper()
	files, err := e.scratch.ClientFiles(user)
	if err != nil {
		e.t.Fatal(err)
	}
	dial := e.scratch.Dial
	if l != nil {
		dial = l.dial
	}
	s, err := New(Config{
		Endpoints: e.scratch.Cluster.Endpoints(),
		CAFile:    e.scratch.CAFile, CertFile: files.Cert, KeyFile: files.Key,
		Prefix: e.prefix, TTLSeconds: testTTL, GraceSeconds: e.grace,
		Dial: dial,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// host is the Self of lab-like host i (underlay 198.18.0.i).
func host(i int, subnet string) cluster.Self {
	self := cluster.Self{
		ID:       fmt.Sprintf("h%d", i),
		Underlay: netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}),
		PeerPort: 7946,
		Network:  testNetwork,
	}
	if subnet != "" {
		self.Subnet = netip.MustParsePrefix(subnet)
	}
	return self
}

// join joins a store, failing the test on error.
func (e *env) join(s *Store, self cluster.Self) cluster.Member {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	m, err := s.Join(ctx, self)
	if err != nil {
		e.t.Fatalf("join %s: %v", self.ID, err)
	}
	return m
}

// listeners of a member: n overlay ports on its first container address.
func listeners(m cluster.Member, first uint16, n int) []cluster.Listener {
	addr := m.Subnet.Addr().Next().Next()
	var ls []cluster.Listener
	for i := range n {
		port := first + uint16(i)
		ls = append(ls, cluster.Listener{
			Overlay: netip.AddrPortFrom(addr, port),
			Host:    netip.AddrPortFrom(m.Underlay, 30000+port),
		})
	}
	return ls
}

// eventually waits until cond holds for the store's state.
func eventually(t *testing.T, s cluster.Store, what string, cond func(*cluster.State) bool) {
	t.Helper()
	deadline := time.After(patience)
	for {
		state, changed := s.State()
		if cond(state) {
			return
		}
		select {
		case <-changed:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("after %v: %s (revision %d, members %v, health %+v)", patience, what, state.Revision(), state.Members(), s.Health())
		}
	}
}

// hasListeners says whether state shows exactly want for host id.
func hasListeners(state *cluster.State, id string, want []cluster.Listener) bool {
	got := state.Listeners(id)
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// rootClient is a client of the scratch cluster as root.
func rootClient(t *testing.T, s *etcdrun.Scratch) *clientv3.Client {
	t.Helper()
	c, err := s.Client("root")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded)
}
