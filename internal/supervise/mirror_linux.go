package supervise

import (
	"golang.org/x/sys/unix"
)

// A Go server waits for connections in its netpoller: its listener is
// registered (edge-triggered) in the runtime's epoll instance. Rather
// than wake it with a doorbell per host connection (a loopback handshake
// to its listener, then an accept to drain it), the supervisor registers
// the host listener in that epoll instance under the program's listener's
// number, with the program's events and data: a host connection wakes the
// netpoller as a connection on its own listener would, and the accept
// that follows is trapped and served from the host listener.
//
// The registration is keyed by the host listener's file, which the
// program never holds, so the program's own epoll_ctl(DEL) of its
// listener leaves it in place until the supervisor withdraws the host
// listener (closing its last file drops it). Until then its events carry
// data the program may have moved on from (a closed listener, its number
// reused). That is harmless only where stale events are dropped: Go ≥ 1.22
// tags each registration's data with the descriptor's sequence number and
// ignores an event whose tag is old (goruntime_linux.go). Every other
// program, and a listener that any other process accepts from too, keeps
// the doorbell.

// mirror makes sure each epoll instance of the caller (thread tid) that
// holds its listener app (at fd) also holds m's host listener under fd,
// when the caller runs a Go runtime that tags its events. Otherwise the
// listener keeps its doorbells (needBell).
func (s *Supervisor) mirror(r *request, m *merged, fd, app int) {
	if m.needsBell.Load() {
		return
	}
	tid := r.tid()
	var todo []int
	seen := false
	for _, epfd := range s.epolls.instances(tid, false) {
		// Mirrored there already (one kcmp, the common case), or
		// holding the program's listener and to be mirrored.
		if done, err := holdsOwn(tid, epfd, fd, m.host); err == nil && done {
			seen = true
			continue
		}
		if found, err := registered(tid, epfd, fd); err != nil || !found {
			continue
		}
		seen = true
		todo = append(todo, epfd)
	}
	switch {
	case !seen:
		// Not waited for with epoll (a blocking accept, poll, select),
		// or by another process than the one mirrored.
		s.servers.needBell(m)
		return
	case len(todo) == 0:
		return
	case !s.goRuns.tagsEvents(tid):
		s.servers.needBell(m)
		return
	}
	var st unix.Stat_t
	if err := unix.Fstat(app, &st); err != nil {
		s.servers.needBell(m)
		return
	}
	regs := make([]registration, 0, len(todo))
	epolls := make([]int, 0, len(todo)) // the request closes them
	for _, epfd := range todo {
		reg, err := readRegistration(tid, epfd, fd, st.Ino)
		if err != nil || reg.events&unix.EPOLLET == 0 {
			s.servers.needBell(m)
			return
		}
		ep, err := r.file(epfd)
		if err != nil {
			s.servers.needBell(m)
			return
		}
		regs, epolls = append(regs, reg), append(epolls, ep)
	}
	// Old and new are both the host listener: a registration of it
	// there already (another thread's accept was first) is replaced.
	if err := s.mover.move(fd, regs, epolls, m.host, m.host); err != nil {
		s.logf("listener %v: register the host listener in the program's epoll: %v", m.overlay, err)
		s.servers.needBell(m)
		return
	}
	if !m.mirrored.Swap(true) {
		s.logf("listener %v: host connections wake the program's epoll directly (no doorbell)", m.overlay)
	}
}

// holdsOwn asks the kernel whether epoll instance epfd of thread tid holds
// the supervisor's file own under number fd (kcmp KCMP_EPOLL_TFD with the
// supervisor's own thread as the first process: its file table is the
// supervisor's, not the epoll mover's).
func holdsOwn(tid, epfd, fd, own int) (bool, error) {
	return epollHolds(unix.Gettid(), own, tid, epfd, fd)
}
