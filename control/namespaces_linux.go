package control

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// foreignClient says why a client is refused, or "" when it is served:
// the control API serves the router's host only, processes that share
// the router's network namespace or its mount namespace (slim status on
// the host, or in the router's pod). A container has neither: even as
// root, and even when the router's directory is mounted into it (the
// OCI runtime wrapper mounts it for the shim), it gets nothing.
func foreignClient(conn net.Conn) string {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return ""
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ""
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || credErr != nil || cred.Pid <= 0 {
		return "the control socket cannot tell which process this is; it serves the router's host only"
	}
	for _, ns := range []string{"net", "mnt"} {
		if sameNamespace(int(cred.Pid), ns) {
			return ""
		}
	}
	return fmt.Sprintf("process %d is neither in the router's network namespace nor in its mount namespace (a container?): the control socket serves the router's host only", cred.Pid)
}

// sameNamespace reports whether process pid is in this process's
// namespace of the given kind (a failure to tell is "no").
func sameNamespace(pid int, kind string) bool {
	mine, err := os.Stat("/proc/self/ns/" + kind)
	if err != nil {
		return false
	}
	theirs, err := os.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
	return err == nil && os.SameFile(mine, theirs)
}
