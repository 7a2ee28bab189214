package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/slimnet/slim/cluster"
	"github.com/slimnet/slim/cluster/etcd"
	"github.com/slimnet/slim/internal/etcdrun"
	"github.com/slimnet/slim/internal/pki"
)

// A lab's etcd: three members in namespaces of their own on the wire
// (NAME-e1..e3 at 198.18.0.101..103), mutual TLS with a CA of the lab's,
// authentication on, and one user per host (its certificate's common
// name) whose role writes only that host's records (docs/cluster.md).
const (
	etcdMembers     = 3
	etcdAddrOffset  = 100
	etcdReadyWithin = 60 * time.Second
)

// EtcdMember is one member of a lab's etcd.
type EtcdMember struct {
	Name  string     `json:"name"`  // e1, …
	Netns string     `json:"netns"` // LAB-e1, …
	Addr  netip.Addr `json:"addr"`
}

// EtcdDir holds the lab's etcd data, logs, CA and certificates (root only).
func (l *Lab) EtcdDir() string { return filepath.Join(StateDir, l.Name, "etcd") }

// EtcdCluster describes the lab's etcd members.
func (l *Lab) EtcdCluster() etcdrun.Cluster {
	c := etcdrun.Cluster{Token: "slim-lab-" + l.Name}
	dir := l.EtcdDir()
	for _, m := range l.Etcd {
		c.Members = append(c.Members, etcdrun.Member{
			Name: m.Name, Addr: m.Addr, DataDir: filepath.Join(dir, m.Name+".data"),
			CertFile: filepath.Join(dir, m.Name+".pem"), KeyFile: filepath.Join(dir, m.Name+"-key.pem"),
			CAFile: filepath.Join(dir, "ca.pem"),
		})
	}
	return c
}

// EtcdClientConfig is host's store configuration: the endpoints, the
// lab's CA and the host's certificate.
func (l *Lab) EtcdClientConfig(host string) etcd.Config {
	dir := l.EtcdDir()
	return etcd.Config{
		Endpoints: l.EtcdCluster().Endpoints(),
		CAFile:    filepath.Join(dir, "ca.pem"),
		CertFile:  filepath.Join(dir, host+".pem"),
		KeyFile:   filepath.Join(dir, host+"-key.pem"),
	}
}

func (l *Lab) buildEtcd(wire *netlink.Handle) error {
	dir := l.EtcdDir()
	if err := mkdirPrivate(dir); err != nil {
		return err
	}
	ca, err := pki.NewAuthority("slim lab " + l.Name + " etcd CA")
	if err != nil {
		return err
	}
	if _, err := ca.WriteCA(dir); err != nil {
		return err
	}
	if _, err := ca.WriteCAKey(dir); err != nil { // AddHost issues more
		return err
	}
	for i := 1; i <= etcdMembers; i++ {
		if err := l.plugEtcdMember(wire, ca, i); err != nil {
			return err
		}
	}
	for i := range l.Etcd {
		if err := l.StartEtcd(i); err != nil {
			return err
		}
	}
	for _, name := range append([]string{etcd.RootUser}, l.hostNames()...) {
		pair, err := ca.Client(name)
		if err == nil {
			_, err = pair.Write(dir, name)
		}
		if err != nil {
			return err
		}
	}
	return l.setUpEtcdUsers()
}

func (l *Lab) hostNames() []string {
	var names []string
	for _, h := range l.Hosts {
		names = append(names, h.Name)
	}
	return names
}

// plugEtcdMember makes member i's namespace on the wire and its
// certificate.
func (l *Lab) plugEtcdMember(wire *netlink.Handle, ca *pki.Authority, i int) error {
	m := EtcdMember{Name: fmt.Sprintf("e%d", i), Netns: namespaceOf(l.Name, fmt.Sprintf("e%d", i))}
	addr := wireAddr(etcdAddrOffset + i)
	m.Addr = addr.Addr()
	if err := newNamespace(m.Netns, false); err != nil {
		return err
	}
	l.Etcd = append(l.Etcd, m)
	handle, err := handleFor(m.Netns)
	if err != nil {
		return err
	}
	defer handle.Close()
	if err := plugIntoWire(wire, handle, Host{Name: m.Name, Netns: m.Netns, Wire: addr}); err != nil {
		return err
	}
	pair, err := ca.Server(m.Name, m.Addr)
	if err == nil {
		_, err = pair.Write(l.EtcdDir(), m.Name)
	}
	return err
}

// StartEtcd starts member i (again: a restart keeps its data). It runs
// on after the caller exits; Down stops it with the lab.
func (l *Lab) StartEtcd(i int) error {
	c := l.EtcdCluster()
	_, err := os.Stat(filepath.Join(c.Members[i].DataDir, "member"))
	existing := err == nil
	start := func(cmd *exec.Cmd) error { return startIn(l.Etcd[i].Netns, cmd) }
	_, err = c.Start(i, start, etcdrun.Options{
		Existing: existing,
		Outlive:  true,
		LogPath:  filepath.Join(l.EtcdDir(), c.Members[i].Name+".log"),
	})
	return err
}

// StopEtcd ends member i's process with sig (SIGKILL: a crash) and waits
// until it is gone.
func (l *Lab) StopEtcd(i int, sig syscall.Signal) error {
	return signalNamespace(l.Etcd[i].Netns, sig)
}

// signalNamespace sends sig to every process in a namespace and waits
// (bounded) until they are gone.
func signalNamespace(namespace string, sig syscall.Signal) error {
	pids, err := pidsInNamespace(namespace)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		syscall.Kill(pid, sig)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if pids, _ = pidsInNamespace(namespace); len(pids) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("processes %v in %s did not end", pids, namespace)
}

// EtcdClient is a client of the lab's etcd as user (root, or a host's
// name), dialing from the first member's namespace.
func (l *Lab) EtcdClient(user string) (*clientv3.Client, error) {
	cfg := l.EtcdClientConfig(user)
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	return etcdrun.Client(cfg.Endpoints, tlsConfig, l.etcdDial)
}

// etcdDial connects from the first member's namespace (on the wire).
func (l *Lab) etcdDial(ctx context.Context, addr string) (net.Conn, error) {
	var conn net.Conn
	err := inNamespace(l.Etcd[0].Netns, func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		return err
	})
	return conn, err
}

// setUpEtcdUsers waits for the members to elect a leader, records the
// overlay layout, gives every host its user and role (each may edit the
// policy: `slim policy` works through any router), and turns
// authentication on.
func (l *Lab) setUpEtcdUsers() error {
	client, err := l.EtcdClient(etcd.RootUser)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), etcdReadyWithin)
	defer cancel()
	if err := etcdrun.WaitReady(ctx, client, l.EtcdCluster().Endpoints()); err != nil {
		return err
	}
	network := cluster.Network{Overlay: OverlayCIDR, HostBits: 24, IPv6: l.IPv6}
	if err := etcd.SetNetwork(ctx, client, "", network); err != nil {
		return err
	}
	for _, h := range l.hostNames() {
		if err := etcd.GrantHost(ctx, client, h, etcd.Grants{PolicyWriter: true}); err != nil {
			return err
		}
	}
	return etcd.EnableAuth(ctx, client)
}
