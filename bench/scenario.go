package bench

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/slimnet/slim/lab"
)

// Scenario is one column of the results: where the server and the client
// run, the address the client connects to, and how their commands are
// started. The first scenario is the baseline the others are compared to.
type Scenario struct {
	Name string
	// Server and Client are the lab nodes whose network namespaces the
	// server and the client run in.
	Server, Client lab.Node
	// ServerAddr is the address the server listens on and the client
	// connects to.
	ServerAddr netip.Addr
	// Wrap turns a tool's command line (its first element an absolute
	// path) into the one actually started, for example to prefix it with
	// a launcher. Plain namespaces use it unchanged.
	Wrap func(node lab.Node, argv []string) []string
	// Accelerated columns must keep their traffic off the overlay: the
	// VXLAN device of ServerHost is watched during each sample.
	Accelerated bool
	ServerHost  lab.Node
	// ClientDirectory is the directory table of the client's router
	// (accelerated columns): a sample starts its client once the table
	// lists the server's listener as accepted from.
	ClientDirectory string
}

// unwrapped starts a tool as it is.
func unwrapped(_ lab.Node, argv []string) []string { return argv }

// Lab nodes the scenarios use: a lab needs at least two hosts with one
// container each.
const (
	serverHost      = "h1"
	clientHost      = "h2"
	serverContainer = "h1-c1"
	clientContainer = "h2-c1"
)

// Names of the columns other code refers to.
const (
	routedColumn = "routed"
	netkitColumn = "netkit"
)

// scenarios lists the columns measured on the lab, baseline first, and
// notes on columns left out. A new column (say, the containers with their
// tools run under slim exec) is one more entry here.
func scenarios(l *lab.Lab, opts Options) ([]Scenario, []string, error) {
	columns, err := packetColumns(l)
	if err != nil {
		return nil, nil, err
	}
	var notes []string
	if opts.Routed {
		routed, routedNotes, err := routedColumns(l)
		if err != nil {
			return nil, nil, err
		}
		columns, notes = append(columns, routed...), routedNotes
	}
	slimColumns, err := slimColumns(l, opts.Slim, opts.Secure)
	return append(columns, slimColumns...), notes, err
}

// packetColumns are the host and the overlay.
func packetColumns(l *lab.Lab) ([]Scenario, error) {
	nodes := map[string]lab.Node{}
	for _, name := range []string{serverHost, clientHost, serverContainer, clientContainer} {
		node, err := l.Node(name)
		if err != nil {
			return nil, fmt.Errorf("%w (the bench needs 2 hosts with a container each)", err)
		}
		nodes[name] = node
	}
	return []Scenario{
		{
			Name:       "host",
			Server:     nodes[serverHost],
			Client:     nodes[clientHost],
			ServerAddr: nodes[serverHost].Addr,
			Wrap:       unwrapped,
		},
		{
			Name:       "overlay",
			Server:     nodes[serverContainer],
			Client:     nodes[clientContainer],
			ServerAddr: nodes[serverContainer].Addr,
			Wrap:       unwrapped,
		},
	}, nil
}

// slimColumns are slim and, if asked, secure; none without a slim binary.
func slimColumns(l *lab.Lab, slim string, secureColumn bool) ([]Scenario, error) {
	if slim == "" {
		return nil, nil
	}
	nodes := map[string]lab.Node{}
	for _, name := range []string{serverContainer, clientContainer} {
		node, err := l.Node(name)
		if err != nil {
			return nil, err
		}
		nodes[name] = node
	}
	accelerated, err := slimScenario(l, slim, nodes)
	if err != nil {
		return nil, err
	}
	if !secureColumn {
		return []Scenario{accelerated}, nil
	}
	secured, err := secureScenario(l, slim)
	if err != nil {
		return nil, err
	}
	return []Scenario{accelerated, secured}, nil
}

// slimScenario is the overlay column with both tools run under slim exec,
// through the routers of their hosts.
func slimScenario(l *lab.Lab, slim string, nodes map[string]lab.Node) (Scenario, error) {
	sockets := map[string]string{}
	for _, node := range []string{serverContainer, clientContainer} {
		sock, err := l.RouterSocket(node)
		if err != nil {
			return Scenario{}, err
		}
		if err := checkRouter(sock); err != nil {
			return Scenario{}, fmt.Errorf("the slim column needs the lab's routers ('slim lab up' starts them): %w", err)
		}
		sockets[node] = sock
	}
	serverHostNode, err := l.Node(serverHost)
	if err != nil {
		return Scenario{}, err
	}
	wrap := func(node lab.Node, argv []string) []string {
		return append([]string{slim, "exec", "--router", sockets[node.Name], "--"}, argv...)
	}
	return Scenario{
		Name:            "slim",
		Server:          nodes[serverContainer],
		Client:          nodes[clientContainer],
		ServerAddr:      nodes[serverContainer].Addr,
		Wrap:            wrap,
		Accelerated:     true,
		ServerHost:      serverHostNode,
		ClientDirectory: filepath.Join(filepath.Dir(sockets[clientContainer]), "directory"),
	}, nil
}

// checkRouter verifies that a router serves the socket.
func checkRouter(path string) error {
	conn, err := net.Dial("unixpacket", path)
	if err != nil {
		return err
	}
	return conn.Close()
}
