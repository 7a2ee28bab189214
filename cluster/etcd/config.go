package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults of the fields a Config leaves zero.
const (
	DefaultPrefix = "/slim/"
	// DefaultTTL is the member lease: a host that dies drops out of
	// every directory within it.
	DefaultTTL = 10 * time.Second
	// DefaultGrace is how long a subnet stays held for a host that
	// stopped renewing it (a reboot, a partition) before another host
	// may claim it.
	DefaultGrace = time.Hour
)

// Config is the "etcd" part of a router's cluster configuration.
type Config struct {
	// Endpoints are the members' client URLs (https://ADDR:2379).
	Endpoints []string `json:"endpoints"`
	// CAFile verifies the members; CertFile and KeyFile are this host's
	// client certificate (its common name is the host's etcd user when
	// etcd's authentication is on: docs/cluster.md).
	CAFile   string `json:"ca_file"`
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// Prefix of every key (default /slim/): clusters sharing an etcd
	// use different prefixes.
	Prefix string `json:"prefix,omitempty"`
	// TTLSeconds is the member lease (default 10), GraceSeconds how long
	// a subnet stays held after its host stopped renewing it (default
	// 3600).
	TTLSeconds   int `json:"ttl_seconds,omitempty"`
	GraceSeconds int `json:"grace_seconds,omitempty"`

	// Dial, if set, opens the connections to the members (tests and
	// benchmarks reach etcd in another network namespace with it).
	Dial func(ctx context.Context, addr string) (net.Conn, error) `json:"-"`
	// Logger receives the store's warnings (nil: none).
	Logger *slog.Logger `json:"-"`
	// PublishOnly: after Join the store does not follow the cluster (its
	// State stays as Join read it). For benchmarks that simulate many
	// hosts in one process; a router always follows.
	PublishOnly bool `json:"-"`
}

func (c Config) prefix() string {
	if c.Prefix == "" {
		return DefaultPrefix
	}
	return c.Prefix
}

func (c Config) ttl() time.Duration {
	if c.TTLSeconds == 0 {
		return DefaultTTL
	}
	return time.Duration(c.TTLSeconds) * time.Second
}

func (c Config) grace() time.Duration {
	if c.GraceSeconds == 0 {
		return DefaultGrace
	}
	return time.Duration(c.GraceSeconds) * time.Second
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Check says what is wrong with the configuration, naming the field.
func (c Config) Check() error {
	if len(c.Endpoints) == 0 {
		return fmt.Errorf("etcd endpoints: none given (such as https://198.18.0.101:2379)")
	}
	for _, ep := range c.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return fmt.Errorf("etcd endpoint %q: want https://HOST:PORT (Slim talks to etcd over mutual TLS only)", ep)
		}
	}
	for field, value := range map[string]string{"ca_file": c.CAFile, "cert_file": c.CertFile, "key_file": c.KeyFile} {
		if value == "" {
			return fmt.Errorf("etcd %s: not given; Slim talks to etcd over mutual TLS (ca_file, cert_file, key_file)", field)
		}
	}
	p := c.prefix()
	if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") {
		return fmt.Errorf("etcd prefix %q: want a path that starts and ends with /, such as /slim/", p)
	}
	if c.TTLSeconds < 0 || (c.TTLSeconds > 0 && c.TTLSeconds < 2) {
		return fmt.Errorf("etcd ttl_seconds %d: at least 2 (etcd's shortest lease)", c.TTLSeconds)
	}
	if c.GraceSeconds < 0 || (c.GraceSeconds > 0 && time.Duration(c.GraceSeconds)*time.Second < c.ttl()) {
		return fmt.Errorf("etcd grace_seconds %d: at least the member lease's %v", c.GraceSeconds, c.ttl())
	}
	return nil
}

// tlsConfig loads the CA and the client certificate.
func (c Config) tlsConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("etcd client certificate %s (key %s): %w", c.CertFile, c.KeyFile, err)
	}
	caPEM, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("etcd ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("etcd ca_file %s: no PEM certificate in it", c.CAFile)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
