package ioctlguard

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seccompData is struct seccomp_data.
type seccompData struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

// notif is struct seccomp_notif: one system call waiting for the guard.
type notif struct {
	ID    uint64
	Pid   uint32 // the calling thread, in the guard's PID namespace
	Flags uint32
	Data  seccompData
}

// notifResp is struct seccomp_notif_resp.
type notifResp struct {
	ID    uint64
	Val   int64
	Error int32 // a negated errno, or 0
	Flags uint32
}

// The request numbers encode the struct sizes: a mismatch would be a
// layout bug here, and fails the build (a negative array length).
const (
	recvSize = unix.SECCOMP_IOCTL_NOTIF_RECV >> 16 & 0x3fff
	sendSize = unix.SECCOMP_IOCTL_NOTIF_SEND >> 16 & 0x3fff
)

var (
	_ [recvSize - unsafe.Sizeof(notif{})]byte
	_ [unsafe.Sizeof(notif{}) - recvSize]byte
	_ [sendSize - unsafe.Sizeof(notifResp{})]byte
	_ [unsafe.Sizeof(notifResp{}) - sendSize]byte
)

// recv takes the next notification. The kernel wants the buffer zeroed.
// ENOENT means the caller went away before it could be read.
func recv(listener int) (notif, error) {
	var n notif
	err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n))
	return n, err
}

// send answers a notification. ENOENT means the caller is gone (killed, or
// interrupted by a signal): nothing is waiting for the answer any more.
func send(listener int, r notifResp) error {
	err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&r))
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// idValid reports whether notification id still waits: its caller is
// alive and still blocked in that system call, so a PID or file opened
// before the check belongs to it.
func idValid(listener int, id uint64) bool {
	return ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil
}

func ioctlPtr(fd int, req uint, p unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(p))
		if errno != unix.EINTR {
			if errno != 0 {
				return errno
			}
			return nil
		}
	}
}
