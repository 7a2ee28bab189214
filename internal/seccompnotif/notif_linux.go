package seccompnotif

import (
	"errors"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Data is struct seccomp_data: the trapped system call.
type Data struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

// Notif is struct seccomp_notif: one system call waiting for an answer.
type Notif struct {
	ID    uint64
	Pid   uint32 // the calling thread, in the receiver's PID namespace
	Flags uint32
	Data  Data
}

// Resp is struct seccomp_notif_resp.
type Resp struct {
	ID    uint64
	Val   int64
	Error int32 // a negated errno, or 0
	Flags uint32
}

// addfd is struct seccomp_notif_addfd.
type addfd struct {
	ID         uint64
	Flags      uint32
	Srcfd      uint32
	Newfd      uint32
	NewfdFlags uint32
}

// The request numbers encode the struct sizes: a mismatch would be a
// layout bug here, and fails the build (a negative array length).
const (
	recvSize  = unix.SECCOMP_IOCTL_NOTIF_RECV >> 16 & 0x3fff
	sendSize  = unix.SECCOMP_IOCTL_NOTIF_SEND >> 16 & 0x3fff
	addfdSize = unix.SECCOMP_IOCTL_NOTIF_ADDFD >> 16 & 0x3fff
)

var (
	_ [recvSize - unsafe.Sizeof(Notif{})]byte
	_ [unsafe.Sizeof(Notif{}) - recvSize]byte
	_ [sendSize - unsafe.Sizeof(Resp{})]byte
	_ [unsafe.Sizeof(Resp{}) - sendSize]byte
	_ [addfdSize - unsafe.Sizeof(addfd{})]byte
	_ [unsafe.Sizeof(addfd{}) - addfdSize]byte
)

// Recv takes the next notification. The kernel wants the buffer zeroed.
// ENOENT means the caller went away before it could be read.
func Recv(listener int) (Notif, error) {
	var n Notif
	err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n))
	return n, err
}

// Send answers a notification. ENOENT means the caller is gone (killed, or
// interrupted by a signal): nothing is waiting for the answer any more.
func Send(listener int, r Resp) error {
	err := ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&r))
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// Continue lets the kernel run notification id's system call as usual.
func Continue(listener int, id uint64) error {
	return Send(listener, Resp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
}

// Return answers notification id with a value, or with errno when it is
// not zero.
func Return(listener int, id uint64, val int64, errno unix.Errno) error {
	if errno != 0 {
		return Send(listener, Resp{ID: id, Error: -int32(errno)})
	}
	return Send(listener, Resp{ID: id, Val: val})
}

// IDValid reports whether notification id still waits: its caller is
// alive and still blocked in that system call, so a PID or file opened
// before the check belongs to it.
func IDValid(listener int, id uint64) bool {
	return ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)) == nil
}

// AddFD installs a copy of src in the caller of notification id: at
// number at, replacing whatever is there at once (SECCOMP_ADDFD_FLAG_SETFD,
// as dup3 does), or with at < 0 at the lowest free number. It returns the
// number in the caller. The notification is not answered: SEND does that.
//
// The answer is a SEND of its own; AddFDAnswer does both in one step.
func AddFD(listener int, id uint64, src, at int, cloexec bool) (int, error) {
	a := addfd{ID: id, Srcfd: uint32(src)}
	if at >= 0 {
		a.Flags |= unix.SECCOMP_ADDFD_FLAG_SETFD
		a.Newfd = uint32(at)
	}
	if cloexec {
		a.NewfdFlags = unix.O_CLOEXEC
	}
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_ADDFD, uintptr(unsafe.Pointer(&a)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(r), nil
	}
}

// AddFDAnswer installs a copy of src in the caller of notification id at
// the lowest free number and answers the call with that number, in one
// step (SECCOMP_ADDFD_FLAG_SEND): the caller wakes once, not twice.
//
// The kernel marks the call answered when it queues the request; a signal
// that interrupted the ioctl before the caller took the file would leave
// the caller with an answer nobody gave (seen: accept returning EPERM,
// the retried ADDFD failing with EINPROGRESS). A Go program gets
// preemption signals on any thread, so the ioctl runs on a thread that
// blocks every signal meanwhile (SIGKILL aside, which ends it all anyway).
func AddFDAnswer(listener int, id uint64, src int, cloexec bool) (int, error) {
	a := addfd{ID: id, Srcfd: uint32(src), Flags: unix.SECCOMP_ADDFD_FLAG_SEND}
	if cloexec {
		a.NewfdFlags = unix.O_CLOEXEC
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &all, &old); err != nil {
		return -1, err
	}
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(listener), unix.SECCOMP_IOCTL_NOTIF_ADDFD, uintptr(unsafe.Pointer(&a)))
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
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

// SetSyncWakeUp asks the kernel to wake the caller and the receiver of
// each notification on the CPU of the one that wakes it
// (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6): the supervisor answers
// at once, so the two take turns like the ends of a synchronous call
// instead of each waking the other across CPUs. Older kernels refuse it
// (EINVAL); the notifications work the same, only slower.
//
// The flags are the ioctl's argument itself, not a pointer to them: a
// pointer is a value with unknown bits, which the kernel refuses (EINVAL).
func SetSyncWakeUp(listener int) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(listener),
			unix.SECCOMP_IOCTL_NOTIF_SET_FLAGS, unix.SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}
