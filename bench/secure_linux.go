package bench

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/slimnet/slim/lab"
)

// The secure column runs in the second container of each host, served by
// a second set of routers in secure mode beside the lab's own.
const (
	secureServer    = "h1-c2"
	secureClient    = "h2-c2"
	secureDirSuffix = "-secure"
	securePeerPort  = 7947
)

func secureSocket(l *lab.Lab, host string) string {
	return filepath.Join(l.RouterDir(host+secureDirSuffix), "router.sock")
}

// startSecureRouters starts the secure set unless it is running already
// (a lab kept from an earlier bench). Down stops it with the lab.
func startSecureRouters(l *lab.Lab, slim string, progress io.Writer) error {
	if checkRouter(secureSocket(l, serverHost)) == nil {
		return nil
	}
	fmt.Fprintf(progress, "starting secure-mode routers beside the lab's own (peer port %d)\n", securePeerPort)
	set := lab.RouterSet{Binary: slim, DirSuffix: secureDirSuffix, PeerPort: securePeerPort}
	if err := l.StartSecureRouterSet(set); err != nil {
		return fmt.Errorf("secure column: %w", err)
	}
	return nil
}

// secureScenario is the slim column in secure mode.
func secureScenario(l *lab.Lab, slim string) (Scenario, error) {
	server, err := l.Node(secureServer)
	if err != nil {
		return Scenario{}, fmt.Errorf("%w (the secure column needs 2 containers per host)", err)
	}
	client, err := l.Node(secureClient)
	if err != nil {
		return Scenario{}, fmt.Errorf("%w (the secure column needs 2 containers per host)", err)
	}
	host, err := l.Node(serverHost)
	if err != nil {
		return Scenario{}, err
	}
	sockets := map[string]string{secureServer: secureSocket(l, serverHost), secureClient: secureSocket(l, clientHost)}
	wrap := func(node lab.Node, argv []string) []string {
		return append([]string{slim, "exec", "--router", sockets[node.Name], "--"}, argv...)
	}
	return Scenario{
		Name: "secure", Server: server, Client: client, ServerAddr: server.Addr,
		Wrap: wrap, Accelerated: true, ServerHost: host,
		ClientDirectory: filepath.Join(filepath.Dir(sockets[secureClient]), "directory"),
	}, nil
}
