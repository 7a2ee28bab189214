package etcdrun

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/internal/pki"
)

// ScratchBase is the first member address of a scratch cluster; member i
// is ScratchBase + i. Benchmark space: nothing else answers there.
var ScratchBase = netip.MustParseAddr("198.18.250.1")

// readyTimeout bounds how long a scratch cluster may take to elect a
// leader (etcd is slow to start on a loaded machine).
const readyTimeout = 60 * time.Second

// Scratch is an etcd cluster of its own in an unnamed network namespace,
// for tests and benchmarks: the members listen on addresses of that
// namespace's loopback, and clients reach them through Dial, which opens its
// sockets in that namespace.
type Scratch struct {
	Namespace *netns.Scratch
	Dir       string
	Cluster   Cluster
	CA        *pki.Authority
	CAFile    string

	mu    sync.Mutex
	procs []*Process
}

// NewScratch starts a cluster of size members under dir (which must
// exist; the caller removes it) and waits until it has a leader.
func NewScratch(dir string, size int) (*Scratch, error) {
	ns, err := netns.NewScratch()
	if err != nil {
		return nil, err
	}
	s := &Scratch{Namespace: ns, Dir: dir, Cluster: Cluster{Token: fmt.Sprintf("scratch-%d", os.Getpid())}}
	if err := s.build(size); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Scratch) build(size int) error {
	addrs := make([]netip.Addr, size)
	for i, a := 0, ScratchBase; i < size; i, a = i+1, a.Next() {
		addrs[i] = a
	}
	if err := s.plumb(addrs); err != nil {
		return err
	}
	if err := s.makeCertificates(addrs); err != nil {
		return err
	}
	for i := range size {
		if _, err := s.StartMember(i, false); err != nil {
			return err
		}
	}
	client, err := s.Client("root")
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	return WaitReady(ctx, client, s.Cluster.Endpoints())
}

// plumb brings lo up with the member addresses on it: the scratch
// namespace's own loopback (this kernel has no dummy interfaces), never
// the machine's.
func (s *Scratch) plumb(addrs []netip.Addr) error {
	handle, err := netlink.NewHandleAt(vnetns.NsHandle(s.Namespace.Fd()))
	if err != nil {
		return fmt.Errorf("netlink in the scratch namespace: %w", err)
	}
	defer handle.Close()
	lo, err := handle.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("scratch namespace: %w", err)
	}
	for _, a := range addrs {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(32, 32)}}
		if err := handle.AddrAdd(lo, addr); err != nil {
			return fmt.Errorf("adding %s: %w", a, err)
		}
	}
	if err := handle.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}

func (s *Scratch) makeCertificates(addrs []netip.Addr) error {
	ca, err := pki.NewAuthority("slim scratch etcd CA")
	if err != nil {
		return err
	}
	s.CA = ca
	if s.CAFile, err = ca.WriteCA(s.Dir); err != nil {
		return err
	}
	for i, a := range addrs {
		name := fmt.Sprintf("e%d", i+1)
		// Every address: members dial each other from whichever address
		// of the shared loopback the kernel picks, and etcd checks a
		// peer's address against its certificate.
		pair, err := ca.Server(name, addrs...)
		if err != nil {
			return err
		}
		files, err := pair.Write(s.Dir, name)
		if err != nil {
			return err
		}
		s.Cluster.Members = append(s.Cluster.Members, Member{
			Name: name, Addr: a, DataDir: filepath.Join(s.Dir, name+".data"),
			CertFile: files.Cert, KeyFile: files.Key, CAFile: s.CAFile,
		})
	}
	return nil
}

// StartMember starts member i (again, if it ran: existing keeps its data).
func (s *Scratch) StartMember(i int, existing bool) (*Process, error) {
	start := func(cmd *exec.Cmd) error { return s.Namespace.Do(cmd.Start) }
	m := s.Cluster.Members[i]
	p, err := s.Cluster.Start(i, start, Options{
		Existing: existing,
		LogPath:  filepath.Join(s.Dir, m.Name+".log"),
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// Process returns the latest process of member i.
func (s *Scratch) Process(i int) *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	for j := len(s.procs) - 1; j >= 0; j-- {
		if s.procs[j].Member.Name == s.Cluster.Members[i].Name {
			return s.procs[j]
		}
	}
	return nil
}

// Dial opens a TCP connection from inside the scratch namespace.
func (s *Scratch) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var conn net.Conn
	err := s.Namespace.Do(func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		return err
	})
	return conn, err
}

// ClientFiles issues a client certificate for user, written under the
// scratch directory.
func (s *Scratch) ClientFiles(user string) (pki.Files, error) {
	pair, err := s.CA.Client(user)
	if err != nil {
		return pki.Files{}, err
	}
	return pair.Write(s.Dir, "client-"+user)
}

// TLS is a client TLS configuration for user.
func (s *Scratch) TLS(user string) (*tls.Config, error) {
	pair, err := s.CA.Client(user)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CA.CertPEM)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Client is a client of the scratch cluster as user.
func (s *Scratch) Client(user string) (*clientv3.Client, error) {
	tlsConfig, err := s.TLS(user)
	if err != nil {
		return nil, err
	}
	return Client(s.Cluster.Endpoints(), tlsConfig, s.Dial)
}

// Close stops every member and releases the namespace; the caller
// removes Dir.
func (s *Scratch) Close() error {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	var errs []error
	for _, p := range procs {
		errs = append(errs, p.Kill())
	}
	errs = append(errs, s.Namespace.Close())
	return errors.Join(errs...)
}
