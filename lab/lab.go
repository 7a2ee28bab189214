package lab

import (
	"fmt"
	"net/netip"
	"os/exec"

	"github.com/vishvananda/netlink"

	"github.com/slimnet/slim/overlay"
)

// Lab is a built lab, as recorded in its state file.
type Lab struct {
	Name  string `json:"name"`
	Hosts []Host `json:"hosts"`
	// Store and Etcd: a lab whose routers take the cluster from etcd
	// (etcd_linux.go).
	Store string       `json:"store,omitempty"`
	Etcd  []EtcdMember `json:"etcd,omitempty"`
	// IPv6 is the overlay's IPv6 prefix of a lab built with Spec.IPv6
	// (OverlayIPv6); zero: IPv4 only.
	IPv6 netip.Prefix `json:"ipv6,omitzero"`
}

// Host is one host namespace of a lab.
type Host struct {
	Name       string       `json:"name"`  // h1, h2, …
	Netns      string       `json:"netns"` // LAB-h1, …
	Wire       netip.Prefix `json:"wire"`
	Subnet     netip.Prefix `json:"subnet"`
	Containers []Container  `json:"containers"`
}

// Container is one container namespace of a lab.
type Container struct {
	Name  string       `json:"name"`  // h1-c1, …
	Netns string       `json:"netns"` // LAB-h1-c1, …
	Addr  netip.Prefix `json:"addr"`
}

// Node is a host or container of a lab: somewhere a command can run.
type Node struct {
	Name  string
	Netns string
	// Addr is the node's own address: the wire address of a host, the
	// overlay address of a container.
	Addr netip.Addr
}

// wireNamespace is the namespace holding the wire bridge.
func wireNamespace(lab string) string { return lab + "-wire" }

func hostName(i int) string               { return fmt.Sprintf("h%d", i) }
func containerName(i, j int) string       { return fmt.Sprintf("h%d-c%d", i, j) }
func namespaceOf(lab, node string) string { return lab + "-" + node }

// Node finds a host or container by name (h1, h1-c1).
func (l *Lab) Node(name string) (Node, error) {
	for _, h := range l.Hosts {
		if h.Name == name {
			return Node{Name: h.Name, Netns: h.Netns, Addr: h.Wire.Addr()}, nil
		}
		for _, c := range h.Containers {
			if c.Name == name {
				return Node{Name: c.Name, Netns: c.Netns, Addr: c.Addr.Addr()}, nil
			}
		}
	}
	for _, m := range l.Etcd {
		if m.Name == name {
			return Node{Name: m.Name, Netns: m.Netns, Addr: m.Addr}, nil
		}
	}
	if len(l.Etcd) > 0 {
		return Node{}, fmt.Errorf("lab %s has no host, container or etcd member named %q", l.Name, name)
	}
	return Node{}, fmt.Errorf("lab %s has no host or container named %q", l.Name, name)
}

// Nodes lists every host and container, hosts first.
func (l *Lab) Nodes() []Node {
	var nodes []Node
	for _, h := range l.Hosts {
		nodes = append(nodes, Node{Name: h.Name, Netns: h.Netns, Addr: h.Wire.Addr()})
	}
	for _, h := range l.Hosts {
		for _, c := range h.Containers {
			nodes = append(nodes, Node{Name: c.Name, Netns: c.Netns, Addr: c.Addr.Addr()})
		}
	}
	return nodes
}

// Start starts cmd in the node's network namespace.
func (n Node) Start(cmd *exec.Cmd) error { return startIn(n.Netns, cmd) }

// Run runs cmd in the node's network namespace and waits for it.
func (n Node) Run(cmd *exec.Cmd) error {
	if err := n.Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// Exec replaces the calling process with argv run in the node's namespace.
func (n Node) Exec(argv []string) error { return execIn(n.Netns, argv) }

// Do runs fn on a thread inside the node's network namespace, for Go code
// that opens sockets there.
func (n Node) Do(fn func() error) error { return inNamespace(n.Netns, fn) }

// VXLANBytes is what a host's overlay VXLAN device has carried, both ways.
func (n Node) VXLANBytes() (uint64, error) {
	var total uint64
	err := n.Do(func() error {
		link, err := netlink.LinkByName(overlay.VXLANName)
		if err != nil {
			return fmt.Errorf("%s has no overlay device: %w", n.Name, err)
		}
		s := link.Attrs().Statistics
		total = s.TxBytes + s.RxBytes
		return nil
	})
	return total, err
}

// HostOf returns the host a container runs on (a host is its own host).
func (l *Lab) HostOf(node string) (Node, error) {
	for _, h := range l.Hosts {
		for _, c := range h.Containers {
			if c.Name == node {
				return l.Node(h.Name)
			}
		}
	}
	return l.Node(node)
}
