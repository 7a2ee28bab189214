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

// What the directory says of an overlay listener.
type dirState int

const (
	dirNone    dirState = iota // no accelerated listener
	dirPending                 // its app is not seen accepting yet: no host listener to connect to
	dirArmed                   // its host listener takes clients
)

// find returns the host listener standing for an overlay listener, if
// its app is seen accepting.
func (d *directoryTable) find(overlay netip.AddrPort) (netip.AddrPort, dirState) {
	host, found := d.reader.Lookup(overlay)
	switch {
	case !found:
		return netip.AddrPort{}, dirNone
	case !host.Addr().IsValid() || host.Addr().IsUnspecified() || host.Port() == 0:
		return netip.AddrPort{}, dirPending
	}
	return host, dirArmed
}

// lookup returns the host listener standing for an overlay listener, if
// its app is seen accepting.
func (d *directoryTable) lookup(overlay netip.AddrPort) (netip.AddrPort, bool) {
	host, st := d.find(overlay)
	return host, st == dirArmed
}
