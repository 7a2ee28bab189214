package supervise

import (
	"net/netip"
	"path/filepath"

	"github.com/slimnet/slim/router/directory"
)

// directoryTable is the router's directory (docs/protocol.md §2), read as
// the shim reads it.
type directoryTable struct{ reader *directory.Reader }

func newDirectory(routerSock string, r *router) *directoryTable {
	path := filepath.Join(filepath.Dir(routerSock), "directory")
	var fallback func() (int, error)
	if r != nil {
		fallback = r.table
	}
	return &directoryTable{reader: directory.NewReader(path, fallback)}
}

// lookup returns the host listener standing for an overlay listener, if
// its app is seen accepting (a pending entry is no listener to connect to).
func (d *directoryTable) lookup(overlay netip.AddrPort) (netip.AddrPort, bool) {
	host, found := d.reader.Lookup(overlay)
	if !found || !host.Addr().IsValid() || host.Addr().IsUnspecified() || host.Port() == 0 {
		return netip.AddrPort{}, false
	}
	return host, true
}
