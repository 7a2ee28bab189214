package router

import (
	"net/netip"
	"syscall"

	"github.com/slimnet/slim/control"
	"github.com/slimnet/slim/router/directory"
	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/secure"
)

// mode is what plain and secure mode do differently (docs/secure.md). The
// router holds one for its whole life: plainMode, or the secureMode that
// startSecure took over the kernel with. Every difference between the two
// is a method here, so nothing else in the router asks which mode it runs.
type mode interface {
	// isSecure is what HELLO tells the shims.
	isSecure() bool
	// callerStart is when the process at the other end of a shim
	// connection started, if the mode needs it (it pins the PID).
	callerStart(raw syscall.RawConn, pid int32) (uint64, error)
	// checkEnrolled says why a caller may not have what a request of
	// type t gives (host sockets), or nil.
	checkEnrolled(who caller, t protocol.Type) error
	// enroll answers an ENROLL whose shape was checked.
	enroll(who caller, req request) (protocol.Message, error)
	// markPool and markListener record what a host socket is for before
	// it is handed out (markPool: a batch of pool sockets, with their
	// cookies).
	markPool(c *container, fds []int, cookies []uint64) error
	markListener(fd int, overlay netip.AddrPort) error
	// listenerFor says whether host listener fd was made for the overlay
	// listener a shim names (PUBLISH).
	listenerFor(fd int, overlay netip.AddrPort) bool
	// setRoutes is told the whole directory after each change.
	setRoutes(entries []directory.Entry)
	// shimEntries is the directory as the shims may see it, and
	// shimHostAddr the host address a LISTEN_OK may tell a container.
	shimEntries(entries []directory.Entry) []directory.Entry
	shimHostAddr(overlay, host netip.AddrPort) netip.AddrPort
	// events is what the kernel counted, for the control API (nil: none).
	events() *control.SecureEvents
	// The policy's kernel side (secure_policy_linux.go): prepareRules
	// loads rules beside those in force, install swaps them in, hits
	// reads their counters, revoke aborts the live connections they deny.
	prepareRules(rules []secure.BPFRule) (*secure.RuleList, error)
	install(p *preparedPolicy) error
	hits() []uint64
	revoke(rules []secure.BPFRule) error
	// forget lets an unregistered container go (secure mode detaches its
	// cgroup's check; the cgroup stays while processes are in it).
	forget(c *container)
	// stop is the mode's part of a clean stop, once nothing is served.
	stop()
}

// plainMode is the router without secure mode: host sockets are handed
// out unmarked, the shims see host addresses, and the policy, if any, is
// checked but enforced nowhere.
type plainMode struct{}

var _ mode = plainMode{}

func (plainMode) isSecure() bool                                     { return false }
func (plainMode) callerStart(syscall.RawConn, int32) (uint64, error) { return 0, nil }
func (plainMode) checkEnrolled(caller, protocol.Type) error          { return nil }

// enroll has nothing to do outside secure mode.
func (plainMode) enroll(caller, request) (protocol.Message, error) {
	return protocol.Message{Type: protocol.TypeOK}, nil
}

func (plainMode) markPool(*container, []int, []uint64) error         { return nil }
func (plainMode) markListener(int, netip.AddrPort) error             { return nil }
func (plainMode) listenerFor(int, netip.AddrPort) bool               { return true }
func (plainMode) setRoutes([]directory.Entry)                        {}
func (plainMode) shimEntries(es []directory.Entry) []directory.Entry { return es }
func (plainMode) shimHostAddr(_, host netip.AddrPort) netip.AddrPort { return host }
func (plainMode) events() *control.SecureEvents                      { return nil }
func (plainMode) prepareRules([]secure.BPFRule) (*secure.RuleList, error) {
	return nil, nil
}
func (plainMode) install(*preparedPolicy) error { return nil }
func (plainMode) hits() []uint64                { return nil }
func (plainMode) revoke([]secure.BPFRule) error { return nil }
func (plainMode) forget(*container)             {}
func (plainMode) stop()                         {}
