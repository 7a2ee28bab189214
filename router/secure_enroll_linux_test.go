package router

import (
	"fmt"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/slimnet/slim/router/protocol"
	"github.com/slimnet/slim/secure"
)

// secureRefusalRouter is a handlerRouter in secure mode as far as its
// refusals go: it identifies callers with their start time and knows its
// binary and its cgroups' place, but loaded nothing into the kernel (a
// request that would reach the kernel is not made here).
func secureRefusalRouter(t *testing.T) *Router {
	t.Helper()
	r, _ := handlerRouter(t)
	binary, err := newTrustedBinary()
	if err != nil {
		t.Fatal(err)
	}
	s := &secureMode{log: r.log, binary: binary, cgroups: &secure.Cgroups{Base: "/sys/fs/cgroup/slim/test"}}
	r.mode = s
	r.callers = kernelIdentifier{containers: r.containers, mode: s}
	return r
}

// TestSecureModeRefusesWhatIsNotEnrolled: in secure mode HELLO says so;
// ENROLL that names no guard, or whose caller is not under a seccomp
// filter, is refused EPERM; POOL, LISTEN and RESERVE of a process outside its
// container's cgroup (not started by slim exec) are refused EPERM, so the
// shim uses the overlay. All decided from kernel facts about this test
// process, which is none of those things.
func TestSecureModeRefusesWhatIsNotEnrolled(t *testing.T) {
	r := secureRefusalRouter(t)
	shim, _ := shimPair(t, r)
	if h, err := protocol.DecodeHello(shim.Call(protocol.Message{Type: protocol.TypeHello, ID: 1}).Payload); err != nil || !h.Secure {
		t.Errorf("HELLO in secure mode: %+v, %v", h, err)
	}
	wantError(t, "ENROLL without a guard", shim.Call(protocol.Message{Type: protocol.TypeEnroll, ID: 2}), unix.EPERM, "ENROLL must name the guard")
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	wantError(t, "ENROLL of a process under no filter", callWith(t, shim, protocol.Message{Type: protocol.TypeEnroll, ID: 3, Payload: protocol.Uint32Payload(0)}, pidfd),
		unix.EPERM, "secure mode: not enrolled") // not under a filter (or, in a container runtime's filter, fd 0 is no listener)
	wantError(t, "POOL outside the container's cgroup", shim.Call(protocol.Message{Type: protocol.TypePool, ID: 4, Payload: protocol.Uint32Payload(1)}),
		unix.EPERM, fmt.Sprintf("process %d of container self was not started with slim exec", os.Getpid()))
	wantError(t, "LISTEN outside the container's cgroup", shim.Call(listenRequest(5, 8)), unix.EPERM, "not started with slim exec")
	bound := appListener(t, netip.MustParseAddrPort("0.0.0.0:0"), false)
	wantError(t, "RESERVE outside the container's cgroup", callWith(t, shim, protocol.Message{Type: protocol.TypeReserve, ID: 7}, bound),
		unix.EPERM, "not started with slim exec")
	if ls, _ := r.listeners.snapshot(); len(ls) != 0 {
		t.Errorf("refused requests left listeners: %+v", ls)
	}
	if reply := shim.Call(protocol.Message{Type: protocol.TypeTable, ID: 6}); reply.Type != protocol.TypeTableOK {
		t.Errorf("TABLE in secure mode: %v %q; only host sockets need enrolment", reply.Type, reply.Text)
	}
}
