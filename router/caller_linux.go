package router

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// caller is who is at the other end of a shim connection, as the kernel
// says: the process that connected and the container it is in, if any.
type caller struct {
	PID       int32
	Netns     uint64 // inode of its network namespace
	Container *container
}

// namespaceInode returns the inode of a network namespace file.
func namespaceInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// identify asks the kernel who connected: SO_PEERCRED gives the process,
// /proc/PID/ns/net its network namespace, the registry the container.
func (r *Router) identify(conn *net.UnixConn) (caller, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return caller{}, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return caller{}, err
	}
	if credErr != nil {
		return caller{}, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	c := caller{PID: cred.Pid}
	ino, err := namespaceInode(fmt.Sprintf("/proc/%d/ns/net", cred.Pid))
	if err != nil {
		if os.IsNotExist(err) {
			return c, fmt.Errorf("process %d exited", cred.Pid)
		}
		return c, err
	}
	c.Netns, c.Container = ino, r.containers.lookup(ino)
	return c, nil
}
