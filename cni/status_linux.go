package cni

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// errPluginNotAvailable is STATUS's error code when ADD cannot be served.
const errPluginNotAvailable = 50

// cmdStatus says whether ADD can succeed and the containers it makes will
// be accelerated: the configuration loads, the host's range has a free
// address, and the router answers.
func cmdStatus(args *skel.CmdArgs) error {
	n, err := load(args.StdinData)
	if err != nil {
		var e *types.Error
		if errors.As(err, &e) {
			err = errors.New(strings.TrimPrefix(e.Msg, "slim: "))
		}
		return pluginError(errPluginNotAvailable, "%v", err)
	}
	allocated, err := n.allocations()
	if err != nil {
		return pluginError(errPluginNotAvailable, "reading the allocations: %v", err)
	}
	if free := size(n.first, n.last) - len(allocated) - n.reservedInRange(); free <= 0 {
		return pluginError(errPluginNotAvailable, "no free overlay address on this host: the %d addresses %s to %s are taken", size(n.first, n.last), n.first, n.last)
	}
	if _, err := n.routerSnapshot(); err != nil {
		return pluginError(errPluginNotAvailable, "the slim router of this host is not answering on %s (%v): containers would get the overlay but no acceleration; start it with: slim router --config %s",
			n.router.ControlPath(), err, n.conf.RouterConfig)
	}
	return nil
}

// reservedInRange counts the reserved addresses among those handed out.
func (n *network) reservedInRange() int {
	count := 0
	for a := range n.reserved() {
		if inRange(a, n.first, n.last) {
			count++
		}
	}
	return count
}

func inRange(a, first, last netip.Addr) bool {
	return a.Compare(first) >= 0 && a.Compare(last) <= 0
}
