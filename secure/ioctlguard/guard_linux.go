package ioctlguard

import (
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// guard answers the notifications of one filter.
type guard struct {
	listener int
	netns    uint64        // cookie of the guard's (the container's) network namespace
	debug    io.Writer     // nil: silent
	sockets  SocketHandler // the trapped calls other than ioctls; nil: the kernel runs them
	inflight *inflight     // what the backstop lets proceed should the guard die; nil: no backstop
}

// reply is the guard's answer to one ioctl.
type reply struct {
	val   int64
	errno unix.Errno
	cont  bool   // let the kernel run the call
	why   string // for SLIM_DEBUG
}

func (r reply) resp(id uint64) notifResp {
	if r.cont {
		return notifResp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	}
	return notifResp{ID: id, Val: r.val, Error: -int32(r.errno)}
}

// serve answers notifications until no process is left under the filter
// (the listener reports POLLHUP) or the listener fails.
func (g *guard) serve() error {
	if g.sockets != nil {
		defer g.sockets.Close()
	}
	for {
		ready, err := g.wait()
		if err != nil || !ready {
			return err
		}
		if err := g.serveOne(); err != nil {
			return err
		}
	}
}

// wait blocks until a notification is pending (true) or no process is
// left under the filter (false).
func (g *guard) wait() (bool, error) {
	fds := []unix.PollFd{{Fd: int32(g.listener), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("poll the seccomp listener: %w", err)
		}
		break
	}
	if fds[0].Revents&unix.POLLIN != 0 {
		return true, nil
	}
	if fds[0].Revents&unix.POLLNVAL != 0 {
		return false, errors.New("poll the seccomp listener: not an open file")
	}
	return false, nil
}

func (g *guard) serveOne() error {
	n, err := recv(g.listener)
	if err == unix.ENOENT {
		return nil // the caller went away
	}
	if err != nil {
		return fmt.Errorf("receive a seccomp notification: %w", err)
	}
	slot := g.inflight.track(n.ID)
	if _, ioctl := lookupCall(n.Data.Arch, n.Data.Nr); !ioctl {
		if g.sockets != nil {
			g.sockets.Handle(n, func() { g.inflight.untrack(slot, n.ID) })
			return nil
		}
		defer g.inflight.untrack(slot, n.ID)
		return send(g.listener, reply{cont: true}.resp(n.ID))
	}
	defer g.inflight.untrack(slot, n.ID)
	r := g.answer(n)
	if g.debug != nil {
		fmt.Fprintf(g.debug, "slim ioctl guard: thread %d fd %d request %#x: %s\n",
			n.Pid, int32(n.Data.Args[0]), uint32(n.Data.Args[1]), r.describe())
	}
	if err := send(g.listener, r.resp(n.ID)); err != nil {
		return fmt.Errorf("answer a seccomp notification: %w", err)
	}
	return nil
}

func (r reply) describe() string {
	switch {
	case r.cont:
		return "continued in the kernel"
	case r.errno != 0:
		return fmt.Sprintf("%s (%v)", r.why, r.errno)
	}
	return fmt.Sprintf("%s (returns %d)", r.why, r.val)
}

// answer decides one notification: see the package documentation.
func (g *guard) answer(n notif) reply {
	call, ok := lookupCall(n.Data.Arch, n.Data.Nr)
	if !ok {
		return reply{cont: true} // not an ioctl: not from this filter
	}
	cmd, arg := uint32(n.Data.Args[1]), n.Data.Args[2]
	if call.compat {
		arg = uint64(uint32(arg))
	}
	t, err := openTarget(g.listener, n)
	if err != nil {
		return failure("open the caller", err)
	}
	defer t.close()
	file, err := t.getfd(int(int32(n.Data.Args[0])))
	if err != nil {
		return failure("take the caller's file", err)
	}
	defer unix.Close(file)
	return g.decide(t, file, call, cmd, arg)
}

// decide answers request cmd on file, the caller's own.
func (g *guard) decide(t *target, file int, call ioctlCall, cmd uint32, arg uint64) reply {
	socket, foreign := g.classify(file)
	switch {
	case cmd == unix.SIOCGSKNS:
		return reply{errno: unix.EPERM, why: "SIOCGSKNS is refused"}
	case foreign:
		return reply{errno: unix.ENODEV, why: "socket of another network namespace"}
	case !socket && (cmd == unix.SIOCGIFCONF || cmd == unix.SIOCGARP):
		return reply{errno: unix.ENOTTY, why: "not a socket"}
	}
	if emulate := emulationFor(cmd, call); emulate != nil {
		return emulate(t, file, call, cmd, arg)
	}
	return reply{cont: true}
}

// classify says whether file is a socket and whether that socket belongs
// to another network namespace than the guard's. A socket whose namespace
// cannot be read counts as foreign.
func (g *guard) classify(file int) (socket, foreign bool) {
	var st unix.Stat_t
	if err := unix.Fstat(file, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return false, false
	}
	cookie, err := unix.GetsockoptUint64(file, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	return true, err != nil || cookie != g.netns
}

// failure answers a call the guard could not look at: the kernel's own
// errno (EBADF for a closed fd), EPERM when the guard may not inspect the
// caller.
func failure(what string, err error) reply {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		errno = unix.EPERM
	}
	return reply{errno: errno, why: what + ": " + err.Error()}
}
