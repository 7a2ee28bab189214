package router

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/slimnet/slim/overlay"
)

// overlayInterval is how often a running router checks its host's overlay
// devices and puts back what is missing or wrong.
const overlayInterval = 10 * time.Second

// forwardingSysctl must be 1: the host forwards between its bridge and its
// VXLAN device.
const forwardingSysctl = "/proc/sys/net/ipv4/ip_forward"

// EnsureOverlay creates or corrects this host's overlay in the network
// namespace of the calling process, from the router's configuration: the
// bridge (the gateway of the host's subnet), the VXLAN device, each peer's
// route with static neighbour and FDB entries (those of hosts no longer
// configured are removed), and IPv4 forwarding (this host's subnet from
// the router's MemberFile if the cluster store gives it). It is idempotent and
// returns what it changed. `slim router` runs it at start and every
// overlayInterval, `slim overlay up` once; the lab builds its hosts with
// the same overlay.Ensure.
func EnsureOverlay(config Config) ([]string, error) {
	config, err := config.WithStoreSubnet()
	if err != nil {
		return nil, err
	}
	plan, err := config.Plan()
	if err != nil {
		return nil, err
	}
	handle, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("overlay: opening netlink: %w", err)
	}
	defer handle.Close()
	_, changes, err := overlay.Ensure(handle, plan, config.Self)
	if err != nil {
		return changes, fmt.Errorf("overlay: %w", err)
	}
	on, err := enableForwarding()
	if err != nil {
		return changes, err
	}
	if on {
		changes = append(changes, "turned on IPv4 forwarding (net.ipv4.ip_forward=1)")
	}
	if plan.Config.HasIPv6() {
		if err := overlay.EnableIPv6Forwarding("/proc/sys"); err != nil {
			return changes, fmt.Errorf("overlay: the host must forward IPv6 between %s and %s: %w", overlay.BridgeName, overlay.VXLANName, err)
		}
	}
	return changes, nil
}

// enableForwarding turns IPv4 forwarding on and says whether it was off.
func enableForwarding() (bool, error) {
	data, err := os.ReadFile(forwardingSysctl)
	if err != nil {
		return false, fmt.Errorf("overlay: reading %s: %w", forwardingSysctl, err)
	}
	if strings.TrimSpace(string(data)) == "1" {
		return false, nil
	}
	if err := os.WriteFile(forwardingSysctl, []byte("1"), 0o644); err != nil {
		return false, fmt.Errorf("overlay: the host must forward between %s and %s (sysctl net.ipv4.ip_forward=1): %w",
			overlay.BridgeName, overlay.VXLANName, err)
	}
	return true, nil
}

// RemoveOverlay deletes this host's overlay devices (`slim overlay down`).
// It refuses while the router serves (it would put them back) and, unless
// force, while containers are attached to the bridge (they would lose
// their network). It returns the devices it removed.
func RemoveOverlay(config Config, force bool) ([]string, error) {
	if conn, err := net.DialTimeout("unix", config.ControlPath(), time.Second); err == nil {
		conn.Close()
		return nil, fmt.Errorf("the router is running (it answers on %s) and would put the overlay back: stop it first", config.ControlPath())
	}
	handle, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("overlay: opening netlink: %w", err)
	}
	defer handle.Close()
	attached, err := overlay.Attached(handle)
	if err != nil {
		return nil, err
	}
	if len(attached) > 0 && !force {
		return nil, fmt.Errorf("%d container interface(s) are attached to %s (%s): they would lose their network; "+
			"remove those containers first, or pass --force", len(attached), overlay.BridgeName, strings.Join(attached, ", "))
	}
	return overlay.Remove(handle)
}

// setUpOverlay is the router's start-up step: its host's overlay, as
// configured, before anything is served. It turns the repair on: a router
// made in memory only (tests) keeps no overlay.
func (r *Router) setUpOverlay() error {
	r.keepsOverlay = true
	changes, err := EnsureOverlay(r.overlayConfig())
	for _, c := range changes {
		r.log.Info("overlay: " + c)
	}
	return err
}

// keepOverlay checks the overlay every overlayInterval and repairs it; a
// clean stop leaves it in place for the containers still running.
func (r *Router) keepOverlay(ctx context.Context) error {
	if !r.keepsOverlay {
		return nil
	}
	ticker := time.NewTicker(overlayInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		changes, err := EnsureOverlay(r.overlayConfig())
		for _, c := range changes {
			r.log.Warn("overlay repaired: " + c)
		}
		if err != nil {
			r.log.Warn("overlay check failed", "err", err)
		}
	}
}

// overlayConfig is the overlay the repair keeps: the configured hosts,
// and on a cluster store also the peers the store gave (routePeers), which
// the repair must not take for stale ones.
func (r *Router) overlayConfig() Config {
	config := r.config
	if r.clusterLink != nil {
		config.Hosts = append(slices.Clone(config.Hosts), r.clusterLink.routedHosts()...)
	}
	return config
}
