package supervise

import (
	"golang.org/x/sys/unix"
)

// MissingFeature names what this kernel lacks for the supervisor, or
// returns "". SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19, which
// brings everything else: pidfd_getfd, ADDFD with SETFD and SEND) is
// checked when the filter is installed; this checks what a kernel of any
// version may be built without.
func MissingFeature() string {
	if !kcmpEpoll() {
		return "kcmp(KCMP_EPOLL_TFD) (CONFIG_KCMP / CONFIG_CHECKPOINT_RESTORE)"
	}
	return ""
}

// kcmpEpoll checks that kcmp finds a registration in an epoll instance.
func kcmpEpoll() bool {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	defer unix.Close(ep)
	fds := make([]int, 2)
	if err := unix.Pipe2(fds, unix.O_CLOEXEC); err != nil {
		return false
	}
	defer closeAll(fds)
	ev := epollEvent(unix.EPOLLIN, 1)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fds[0], &ev); err != nil {
		return false
	}
	// This thread's file table, which holds ep and fds: the process's
	// (its leader's) may be the epoll mover's private one.
	found, err := registered(unix.Gettid(), ep, fds[0])
	return err == nil && found
}
