package etcdrun

import (
	"fmt"
	"net/netip"
	"strings"
)

// Ports of every member, on its own address.
const (
	ClientPort = 2379
	PeerPort   = 2380
)

// Member is one etcd member.
type Member struct {
	Name    string     // e1, e2, …
	Addr    netip.Addr // where it listens for clients and peers
	DataDir string
	// CertFile and KeyFile serve clients and peers (and dial peers);
	// CAFile is the CA both sides must be signed by.
	CertFile, KeyFile, CAFile string
}

// Cluster is a set of members started together.
type Cluster struct {
	Token   string // initial-cluster-token: tells clusters apart
	Members []Member
	// Auth: with authentication on, etcd takes a client certificate's
	// common name as the user (no passwords).
}

// ClientURL is the URL clients reach a member at.
func (m Member) ClientURL() string {
	return fmt.Sprintf("https://%s", netip.AddrPortFrom(m.Addr, ClientPort))
}

func (m Member) peerURL() string {
	return fmt.Sprintf("https://%s", netip.AddrPortFrom(m.Addr, PeerPort))
}

// Endpoints are the client URLs of every member.
func (c Cluster) Endpoints() []string {
	var urls []string
	for _, m := range c.Members {
		urls = append(urls, m.ClientURL())
	}
	return urls
}

// Args is the command line of member i (without the program's name): a
// new cluster unless existing, mutual TLS on both sides, and a watch
// progress notification every few seconds so that watchers learn the
// revision when nothing changes.
func (c Cluster) Args(i int, existing bool) []string {
	m := c.Members[i]
	var initial []string
	for _, o := range c.Members {
		initial = append(initial, o.Name+"="+o.peerURL())
	}
	state := "new"
	if existing {
		state = "existing"
	}
	return []string{
		"--name", m.Name,
		"--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL(),
		"--advertise-client-urls", m.ClientURL(),
		"--listen-peer-urls", m.peerURL(),
		"--initial-advertise-peer-urls", m.peerURL(),
		"--initial-cluster", strings.Join(initial, ","),
		"--initial-cluster-state", state,
		"--initial-cluster-token", c.Token,
		"--cert-file", m.CertFile, "--key-file", m.KeyFile,
		"--trusted-ca-file", m.CAFile, "--client-cert-auth",
		"--peer-cert-file", m.CertFile, "--peer-key-file", m.KeyFile,
		"--peer-trusted-ca-file", m.CAFile, "--peer-client-cert-auth",
		"--experimental-watch-progress-notify-interval", "5s",
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn",
	}
}
