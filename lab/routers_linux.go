package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	controlapi "github.com/slimnet/slim/control"
	named "github.com/slimnet/slim/internal/netns"
	"github.com/slimnet/slim/router"
)

// routerStartTimeout bounds how long StartRouters waits for a router to
// serve its socket.
const routerStartTimeout = 5 * time.Second

// RouterDir is the directory of a host's router: its socket, directory
// table, configuration and log.
func (l *Lab) RouterDir(host string) string { return filepath.Join(StateDir, l.Name, host) }

// RouterSocket is the router socket that serves a node (a host or one of
// its containers).
func (l *Lab) RouterSocket(node string) (string, error) {
	for _, h := range l.Hosts {
		if h.Name == node {
			return filepath.Join(l.RouterDir(h.Name), "router.sock"), nil
		}
		for _, c := range h.Containers {
			if c.Name == node {
				return filepath.Join(l.RouterDir(h.Name), "router.sock"), nil
			}
		}
	}
	return "", fmt.Errorf("lab %s has no node %q", l.Name, node)
}

// RouterConfig is the configuration of host index i's router.
func (l *Lab) RouterConfig(i int) router.Config {
	c := router.Config{
		Dir:      l.RouterDir(l.Hosts[i].Name),
		Overlay:  OverlayCIDR.String(),
		HostBits: 24,
		Self:     i,
		PeerPort: router.DefaultPeerPort,
	}
	if l.IPv6.IsValid() {
		c.OverlayIPv6 = l.IPv6.String()
	}
	for _, h := range l.Hosts {
		c.Hosts = append(c.Hosts, router.HostConfig{Underlay: h.Wire.Addr().String(), Subnet: h.Subnet.String()})
	}
	if l.Store == StoreEtcd {
		self := l.Hosts[i]
		c.Hosts = []router.HostConfig{{Underlay: self.Wire.Addr().String(), Subnet: self.Subnet.String()}}
		c.Self = 0
		c.Cluster = &router.ClusterConfig{Store: StoreEtcd, HostID: self.Name, Etcd: l.EtcdClientConfig(self.Name)}
	}
	for _, ct := range l.Hosts[i].Containers {
		c.Containers = append(c.Containers, router.ContainerConfig{
			Name: ct.Name, Netns: named.Path(ct.Netns), Addr: ct.Addr.Addr().String(),
		})
	}
	return c
}

// StartRouters runs `binary router` in every host namespace and waits until
// each serves its socket. The routers outlive the caller; Down stops them
// with the rest of the lab's processes.
func (l *Lab) StartRouters(binary string, args ...string) error {
	return l.StartRouterSet(RouterSet{Binary: binary, Args: args})
}

// RouterSet is one router per host. A lab may run two sets side by side
// (say, one in secure mode, for the bench): they need their own directory
// suffix and peer port.
type RouterSet struct {
	Binary string
	Args   []string
	// DirSuffix is appended to each host's router directory ("" for the
	// lab's main routers).
	DirSuffix string
	// PeerPort is the routers' peer port (0: router.DefaultPeerPort).
	PeerPort uint16
}

// StartRouterSet starts a set of routers with the lab's cluster key (which
// authenticates their directory exchange) and waits until each serves its
// socket and has reached its peers.
func (l *Lab) StartRouterSet(set RouterSet) error {
	key, err := l.EnsureClusterKey()
	if err != nil {
		return err
	}
	set.Args = append([]string{"--key-file", key}, set.Args...)
	for i, h := range l.Hosts {
		if err := l.startRouter(i, set); err != nil {
			return fmt.Errorf("router of %s: %w", h.Name, err)
		}
	}
	for _, h := range l.Hosts {
		if err := waitForPeers(filepath.Join(l.RouterDir(h.Name+set.DirSuffix), "control.sock")); err != nil {
			return fmt.Errorf("router of %s: %w", h.Name, err)
		}
	}
	if l.Store == StoreEtcd {
		return l.WaitForOverlayRoutes()
	}
	return nil
}

// waitForPeers waits until a router has connected to every peer router
// (started one after the other, they retry with a backoff), so that a
// listener registered right after StartRouters reaches every host.
func waitForPeers(control string) error {
	deadline := time.Now().Add(routerStartTimeout)
	for {
		snap, err := controlapi.Fetch(context.Background(), control)
		connected := err == nil
		for _, p := range snap.Peers {
			connected = connected && p.Connected
		}
		if connected {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not connected to its peer routers after %v (%v)", routerStartTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *Lab) startRouter(i int, set RouterSet) error {
	config := l.RouterConfig(i)
	config.Dir = l.RouterDir(l.Hosts[i].Name + set.DirSuffix)
	if set.PeerPort != 0 {
		config.PeerPort = set.PeerPort
	}
	if err := mkdirPrivate(config.Dir); err != nil {
		return err
	}
	configPath := filepath.Join(config.Dir, "router.json")
	if err := config.Save(configPath); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(config.Dir, "router.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, privateFileMode)
	if err != nil {
		return err
	}
	defer logFile.Close()
	if err := logFile.Chmod(privateFileMode); err != nil {
		return err
	}
	cmd := exec.Command(set.Binary, append([]string{"router", "--config", configPath}, set.Args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := startIn(l.Hosts[i].Netns, cmd); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return waitForSocket(config.SocketPath(), exited, logFile.Name())
}

// waitForSocket polls until the router accepts on its socket, failing early
// if it exits.
func waitForSocket(path string, exited <-chan error, logPath string) error {
	deadline := time.Now().Add(routerStartTimeout)
	for time.Now().Before(deadline) {
		if conn, err := net.Dial("unixpacket", path); err == nil {
			conn.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited (%v); see %s", err, logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("did not serve " + path + " within " + routerStartTimeout.String())
}
