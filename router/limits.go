package router

import "fmt"

// Limits bound what one caller may take from the router, so that no
// container and no local user can take it from the others (docs/secure.md,
// "Tested: local denial of service and shim reports"). A zero field takes
// its default.
type Limits struct {
	// ShimConnections is the most shim connections the processes of one
	// container (one network namespace) may hold open at once. A shim
	// keeps one per thread that uses the router. Default 4096.
	ShimConnections int `json:"shim_connections,omitempty"`
	// StrangerConnections is the most shim connections one user (uid) may
	// hold open from outside every registered container; the router
	// refuses such callers every request anyway. Default 16.
	StrangerConnections int `json:"stranger_connections,omitempty"`
	// PoolSockets is the most host sockets from POOL replies that one
	// container may hold at once: unused, connected, or in flight in a
	// unix socket. Default 16384.
	PoolSockets int `json:"pool_sockets,omitempty"`
}

// Default limits.
const (
	DefaultShimConnections     = 4096
	DefaultStrangerConnections = 16
	DefaultPoolSockets         = 16384
)

// withDefaults fills in the zero fields.
func (l Limits) withDefaults() Limits {
	if l.ShimConnections == 0 {
		l.ShimConnections = DefaultShimConnections
	}
	if l.StrangerConnections == 0 {
		l.StrangerConnections = DefaultStrangerConnections
	}
	if l.PoolSockets == 0 {
		l.PoolSockets = DefaultPoolSockets
	}
	return l
}

// check refuses negative limits.
func (l Limits) check() error {
	for _, f := range []struct {
		name  string
		value int
	}{{"shim_connections", l.ShimConnections}, {"stranger_connections", l.StrangerConnections}, {"pool_sockets", l.PoolSockets}} {
		if f.value < 0 {
			return fmt.Errorf("limits: %s %d is negative (0 takes the default)", f.name, f.value)
		}
	}
	return nil
}
