package cni

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/slimnet/slim/overlay"
	"github.com/slimnet/slim/router"
)

// DefaultDataDir holds the address allocations of every network, one
// directory per network name. It is on disk: allocations survive a reboot
// (the runtime's DEL or GC releases them).
const DefaultDataDir = "/var/lib/slim/cni"

// NetConf is the plugin's network configuration: CNI's fields and Slim's.
type NetConf struct {
	types.PluginConf
	// RouterConfig is the router's configuration file (required).
	RouterConfig string `json:"routerConfig"`
	// DataDir holds the allocations (default DefaultDataDir).
	DataDir string `json:"dataDir,omitempty"`
	// RangeStart and RangeEnd, if set, restrict the addresses handed out
	// to part of this host's subnet (the rest for containers set up by
	// hand, say).
	RangeStart string `json:"rangeStart,omitempty"`
	RangeEnd   string `json:"rangeEnd,omitempty"`
}

// network is a loaded configuration: the plugin's, the router's, and what
// follows from them.
type network struct {
	conf   NetConf
	router router.Config
	plan   overlay.Plan
	self   overlay.HostPlan
	// first and last bound the addresses handed out.
	first, last netip.Addr
}

// load parses and checks the configuration on stdin and the router's
// configuration it names. Every mistake is an ErrInvalidNetworkConfig
// error that says what to fix.
func load(stdin []byte) (*network, error) {
	n, err := parseConf(stdin)
	if err != nil {
		return nil, err
	}
	return n, n.loadRouter()
}

// parseConf parses and checks the plugin's own configuration.
func parseConf(stdin []byte) (*network, error) {
	var conf NetConf
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("slim: the network configuration is not valid JSON: %v", err), "")
	}
	if conf.Name == "" {
		return nil, configError(`the network configuration has no "name"`)
	}
	if !validNetworkName.MatchString(conf.Name) {
		return nil, configError("network name %q: want letters, digits, '_', '.' and '-', starting with a letter or digit", conf.Name)
	}
	if conf.RouterConfig == "" {
		return nil, configError(`network %s: "routerConfig" is required: the path of the slim router's configuration file (such as /etc/slim/router.json)`, conf.Name)
	}
	if conf.IPAM.Type != "" {
		return nil, configError(`network %s: "ipam" is not used: slim hands out this host's overlay addresses itself (remove "ipam"; "rangeStart"/"rangeEnd" restrict the range)`, conf.Name)
	}
	if conf.DataDir == "" {
		conf.DataDir = DefaultDataDir
	}
	return &network{conf: conf}, nil
}

// loadRouter reads the router's configuration the plugin's names.
func (n *network) loadRouter() error {
	rc, err := router.LoadConfig(n.conf.RouterConfig)
	if err == nil {
		rc, err = rc.WithStoreSubnet() // a subnet the cluster store gave the host
	}
	if err != nil {
		return configError("network %s: %v", n.conf.Name, err)
	}
	plan, err := rc.Plan()
	if err != nil {
		return configError("network %s: router config %s: %v", n.conf.Name, n.conf.RouterConfig, err)
	}
	n.router, n.plan, n.self = rc, plan, plan.Hosts[rc.Self]
	return n.setRange()
}

// setRange works out the addresses to hand out: the host's container
// range, narrowed by rangeStart and rangeEnd.
func (n *network) setRange() error {
	n.first, n.last = n.self.ContainerRange()
	for _, bound := range []struct {
		field, text string
		into        *netip.Addr
	}{{"rangeStart", n.conf.RangeStart, &n.first}, {"rangeEnd", n.conf.RangeEnd, &n.last}} {
		if bound.text == "" {
			continue
		}
		addr, err := netip.ParseAddr(bound.text)
		if err != nil || !addr.Is4() {
			return configError("network %s: %s %q is not an IPv4 address", n.conf.Name, bound.field, bound.text)
		}
		if problem := n.self.ContainerAddrProblem(addr); problem != "" {
			first, last := n.self.ContainerRange()
			return configError("network %s: %s %s %s; this host's containers get %s to %s", n.conf.Name, bound.field, addr, problem, first, last)
		}
		*bound.into = addr
	}
	if n.first.Compare(n.last) > 0 {
		return configError("network %s: rangeStart %s is after rangeEnd %s", n.conf.Name, n.first, n.last)
	}
	return nil
}

// validNetworkName is libcni's rule for network names; the name is also
// the allocations' directory.
var validNetworkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// Error codes of the plugin's own (100 and up, per the spec).
const (
	// ErrSubnetExhausted: no free address in the host's subnet (or range).
	ErrSubnetExhausted uint = 101
	// ErrRouterRefused: the router refused to register the container.
	ErrRouterRefused uint = 102
	// ErrNotAsAdded: CHECK found the container's network changed.
	ErrNotAsAdded uint = 103
)

func configError(format string, args ...any) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, "slim: "+fmt.Sprintf(format, args...), "")
}

func pluginError(code uint, format string, args ...any) *types.Error {
	return types.NewError(code, "slim: "+fmt.Sprintf(format, args...), "")
}
