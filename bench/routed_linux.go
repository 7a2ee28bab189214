package bench

import (
	"errors"
	"fmt"

	"github.com/slimnet/slim/lab"
)

// routedColumns are the anchor columns (Options.Routed): the tools in
// routed containers, linked to their hosts by veth ("routed") or netkit
// ("netkit"), their subnets routed over the wire without encapsulation
// (lab.EnsureRouted). A kernel without netkit leaves its column out, with
// a note saying so.
func routedColumns(l *lab.Lab) (columns []Scenario, notes []string, err error) {
	for _, kind := range []struct {
		column string
		attach lab.Attachment
	}{{routedColumn, lab.AttachVeth}, {netkitColumn, lab.AttachNetkit}} {
		nodes, err := l.EnsureRouted(kind.attach)
		if kind.attach == lab.AttachNetkit && errors.Is(err, lab.ErrNoNetkit) {
			notes = append(notes, fmt.Sprintf("no %s column: %v", kind.column, err))
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("the %s column: %w", kind.column, err)
		}
		server, client, err := routedPair(l, nodes)
		if err != nil {
			return nil, nil, err
		}
		columns = append(columns, Scenario{Name: kind.column, Server: server, Client: client, ServerAddr: server.Addr, Wrap: unwrapped})
	}
	return columns, notes, nil
}

// routedPair picks the routed containers of the server's and the client's
// hosts.
func routedPair(l *lab.Lab, nodes []lab.Node) (server, client lab.Node, err error) {
	for i, h := range l.Hosts {
		switch h.Name {
		case serverHost:
			server = nodes[i]
		case clientHost:
			client = nodes[i]
		}
	}
	if server.Name == "" || client.Name == "" {
		return server, client, fmt.Errorf("the routed columns need hosts %s and %s", serverHost, clientHost)
	}
	return server, client, nil
}
