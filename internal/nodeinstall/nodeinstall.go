// Package nodeinstall puts Slim on a node from a container, the way
// Flannel's install step does: the slim binary (CNI plugin and runtime
// wrapper), the CNI network configuration, the router's configuration
// with this node as "self", and the wrapper's configuration, all written
// atomically under the host's root as the container sees it.
package nodeinstall

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"

	"github.com/slimnet/slim/oci"
	"github.com/slimnet/slim/router"
)

// Where things go on the host.
const (
	BinDir        = "/opt/slim/bin"
	CNIBinDir     = "/opt/cni/bin"
	CNIConfDir    = "/etc/cni/net.d"
	RouterConfig  = "/etc/slim/router.json"
	RuntimeConfig = oci.DefaultConfigPath
	CNIConfName   = "10-slim.conflist"
)

// Options say what to install.
type Options struct {
	HostRoot    string     // the host's "/" as this process sees it
	ConfigDir   string     // router.json, 10-slim.conflist, runtime.json (optional)
	NodeAddress netip.Addr // this node's underlay address: picks "self"
	Binary      string     // the slim binary to copy
}

// Install installs and returns one line per thing it wrote.
func Install(opts Options) ([]string, error) {
	var done []string
	steps := []func(Options) (string, error){installBinary, installRouterConfig, installCNIConfig, installRuntimeConfig}
	for _, step := range steps {
		line, err := step(opts)
		if err != nil {
			return done, err
		}
		if line != "" {
			done = append(done, line)
		}
	}
	return done, nil
}

func (o Options) host(path string) string { return filepath.Join(o.HostRoot, path) }

// installBinary copies slim to BinDir and links slim-runc and the CNI
// plugin to it (the links name host paths).
func installBinary(o Options) (string, error) {
	data, err := os.ReadFile(o.Binary)
	if err != nil {
		return "", fmt.Errorf("read the slim binary: %w", err)
	}
	slim := filepath.Join(BinDir, "slim")
	if err := writeAtomic(o.host(slim), data, 0o755); err != nil {
		return "", err
	}
	links := map[string]string{filepath.Join(BinDir, "slim-runc"): "slim", filepath.Join(CNIBinDir, "slim"): slim}
	for link, target := range links {
		if err := symlinkAtomic(target, o.host(link)); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("installed %s, %s/slim-runc and the CNI plugin %s/slim", slim, BinDir, CNIBinDir), nil
}

// installRouterConfig writes the router's configuration with "self" set
// to the host whose underlay address is this node's.
func installRouterConfig(o Options) (string, error) {
	source := filepath.Join(o.ConfigDir, "router.json")
	config, err := router.LoadConfig(source)
	if err != nil {
		return "", err
	}
	if o.NodeAddress.IsValid() {
		self := -1
		var listed []string
		for i, h := range config.Hosts {
			listed = append(listed, h.Underlay)
			if addr, err := netip.ParseAddr(h.Underlay); err == nil && addr == o.NodeAddress {
				self = i
			}
		}
		if self < 0 {
			return "", fmt.Errorf("%s: this node's address %s is not among the hosts (%s): add the node (its address and overlay subnet) to the hosts of the router's config", source, o.NodeAddress, strings.Join(listed, ", "))
		}
		config.Self = self
	}
	target := o.host(RouterConfig)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return "", err
	}
	if err := config.Save(target); err != nil {
		return "", fmt.Errorf("write %s: %w", RouterConfig, err)
	}
	return fmt.Sprintf("wrote %s: this node is host %d, %s, subnet %s", RouterConfig, config.Self, config.Hosts[config.Self].Underlay, config.Hosts[config.Self].Subnet), nil
}

// installCNIConfig copies the network configuration list, checked.
func installCNIConfig(o Options) (string, error) {
	source := filepath.Join(o.ConfigDir, CNIConfName)
	data, err := os.ReadFile(source)
	if err != nil {
		return "", err
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", source, err)
	}
	target := filepath.Join(CNIConfDir, CNIConfName)
	if err := writeAtomic(o.host(target), data, 0o644); err != nil {
		return "", err
	}
	return fmt.Sprintf("wrote %s: network %s", target, list.Name), nil
}

// installRuntimeConfig copies the runtime wrapper's config, if given.
func installRuntimeConfig(o Options) (string, error) {
	source := filepath.Join(o.ConfigDir, "runtime.json")
	if _, err := os.Stat(source); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if _, err := oci.LoadConfig(source); err != nil {
		return "", err
	}
	data, err := os.ReadFile(source)
	if err != nil {
		return "", err
	}
	if err := writeAtomic(o.host(RuntimeConfig), data, 0o644); err != nil {
		return "", err
	}
	return "wrote " + RuntimeConfig, nil
}

// writeAtomic writes a file through a temporary file in its directory.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".slim-install-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func symlinkAtomic(target, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".slim-install"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
