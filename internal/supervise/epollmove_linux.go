package supervise

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// epollMover moves epoll registrations from a program's old socket to the
// socket swapped in under the same number. The registration must be keyed
// by that number, as the program's own epoll_ctl(DEL, MOD) will name it,
// so epoll_ctl has to be made with the socket at exactly that number: a
// thread of the supervisor with a file table of its own (unshare
// CLONE_FILES) does it, so that placing a file at the number cannot
// disturb the supervisor's other files. The thread takes the files over a
// socket pair made before the unshare.
type epollMover struct {
	mu    sync.Mutex
	sends int // the supervisor's end
	jobs  chan moveJob
}

type moveJob struct {
	fd   int
	regs []registration
	done chan error
}

// newEpollMover starts the mover's thread.
func newEpollMover() (*epollMover, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	m := &epollMover{sends: pair[0], jobs: make(chan moveJob)}
	started := make(chan error)
	go m.run(pair[1], started)
	if err := <-started; err != nil {
		unix.Close(pair[0])
		unix.Close(pair[1])
		return nil, err
	}
	// The mover's table has its own copy of pair[1]; this one can go.
	unix.Close(pair[1])
	return m, nil
}

// move re-registers fd's registrations: in each epoll instance (epolls,
// the supervisor's copies, in regs' order) the old file at that number
// leaves and the new one comes, with the same events and data.
func (m *epollMover) move(fd int, regs []registration, epolls []int, old, new int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	files := append([]int{old, new}, epolls...)
	if err := unix.Sendmsg(m.sends, []byte{1}, unix.UnixRights(files...), nil, unix.MSG_NOSIGNAL); err != nil {
		return fmt.Errorf("hand files to the epoll mover: %w", err)
	}
	job := moveJob{fd: fd, regs: regs, done: make(chan error)}
	m.jobs <- job
	return <-job.done
}

// run is the mover's thread: it never gives its file table back.
func (m *epollMover) run(recvs int, started chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	if err := unix.Unshare(unix.CLONE_FILES); err != nil {
		started <- fmt.Errorf("unshare the file table: %w", err)
		return
	}
	started <- nil
	for job := range m.jobs {
		job.done <- moveOnce(&recvs, job)
	}
}

// moveOnce takes the job's files and re-registers.
func moveOnce(recvs *int, job moveJob) error {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*(2+len(job.regs))))
	_, oobn, _, _, err := unix.Recvmsg(*recvs, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("epoll mover: bad control message")
	}
	files, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(files) != 2+len(job.regs) {
		closeAll(files)
		return fmt.Errorf("epoll mover: %d files for %d registrations", len(files), len(job.regs))
	}
	defer func() { closeAll(files) }()
	// Nothing of ours may sit at the program's number.
	for i := range files {
		if err := keepOff(&files[i], job.fd); err != nil {
			return err
		}
	}
	if err := keepOff(recvs, job.fd); err != nil {
		return err
	}
	return reregister(job.fd, files[0], files[1], files[2:], job.regs)
}

// keepOff moves *fd above number n if it sits there.
func keepOff(fd *int, n int) error {
	if *fd != n {
		return nil
	}
	moved, err := unix.FcntlInt(uintptr(*fd), unix.F_DUPFD_CLOEXEC, n+1)
	if err != nil {
		return err
	}
	unix.Close(*fd)
	*fd = moved
	return nil
}

// reregister puts old, then new, at number n of this thread's table and
// moves each registration. What sat at n (a copy of one of the
// supervisor's files, from before the unshare) is put back. Only system
// calls run between: the runtime never sees the number change.
func reregister(n, old, new int, epolls []int, regs []registration) error {
	saved, savedFlags := -1, 0
	if flags, err := unix.FcntlInt(uintptr(n), unix.F_GETFD, 0); err == nil {
		if saved, err = unix.FcntlInt(uintptr(n), unix.F_DUPFD_CLOEXEC, n+1); err != nil {
			return err
		}
		savedFlags = flags
	}
	var firstErr error
	if err := unix.Dup3(old, n, unix.O_CLOEXEC); err != nil {
		firstErr = err
	} else {
		for _, ep := range epolls {
			unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, n, nil) // gone already if the file was
		}
	}
	if err := unix.Dup3(new, n, unix.O_CLOEXEC); err != nil && firstErr == nil {
		firstErr = err
	} else if err == nil {
		for i, ep := range epolls {
			ev := epollEvent(regs[i].events, regs[i].data)
			if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, n, &ev); err != nil && firstErr == nil {
				firstErr = fmt.Errorf("re-register fd %d in epoll %d: %w", n, regs[i].epfd, err)
			}
		}
	}
	if saved >= 0 {
		cloexec := 0
		if savedFlags&unix.FD_CLOEXEC != 0 {
			cloexec = unix.O_CLOEXEC
		}
		unix.Dup3(saved, n, cloexec)
		unix.Close(saved)
	} else {
		unix.Close(n)
	}
	return firstErr
}

// epollEvent is struct epoll_event: its data is the last 8 bytes (packed
// on x86-64, aligned on arm64).
func epollEvent(events uint32, data uint64) unix.EpollEvent {
	ev := unix.EpollEvent{Events: events}
	*(*uint64)(unsafe.Add(unsafe.Pointer(&ev), unsafe.Sizeof(ev)-8)) = data
	return ev
}

func unsafeAdd(ev *unix.EpollEvent) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(ev), unsafe.Sizeof(*ev)-8)
}
