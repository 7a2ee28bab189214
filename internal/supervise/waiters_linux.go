package supervise

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// A host listener gets clients only once the program is seen accepting
// from its listener in a way the supervisor serves (docs/datapath.md,
// "The supervised path"): a program that accepts with io_uring takes
// connections from its listener past the supervisor, so clients sent to
// its host listener would wait there forever. The router lists the host
// listener as pending from LISTEN (clients wait a moment for it, then use
// the overlay) until the supervisor arms it (PUBLISH), which it does when
// it sees, on the program's listener:
//
//   - an accept or accept4 (trapped: the supervisor performs it);
//   - an epoll registration in one of the program's epoll instances (kcmp
//     KCMP_EPOLL_TFD): epoll's wake-up is the doorbell's, and the accept
//     that follows is trapped;
//   - a thread of the program blocked in poll, ppoll, select or pselect6
//     with the listener among its read descriptors (/proc/PID/task/TID/
//     syscall gives the call and its arguments).
//
// It looks right after listen and then less and less often while the
// listener is pending, for a minute at most (a trapped accept still arms
// it later). A program that waits on io_uring shows none of
// these: its listener stays pending and its clients use the overlay.

// pendingChecks are the pauses between the looks at a pending listener;
// the last repeats.
var pendingChecks = []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	200 * time.Millisecond, 500 * time.Millisecond, time.Second}

// pendingLooks bounds how long a pending listener is looked at (a program
// that accepts with io_uring would be looked at for ever, each look
// reading its fd table); a trapped accept still arms it later.
const pendingLooks = time.Minute

// watchPending arms m as soon as process pid is seen waiting on its
// listener, its fd, or a trapped accept armed it; it gives up when the
// listener is withdrawn, or after pendingLooks.
func (l *listeners) watchPending(m *merged, pid, fd int) {
	for i, start := 0, time.Now(); time.Since(start) < pendingLooks; i++ {
		time.Sleep(pendingChecks[min(i, len(pendingChecks)-1)])
		if m.armed.Load() || m.isClosed() {
			return
		}
		if how := waitsOn(pid, fd); how != "" {
			l.s.logf("listener %v: the program waits on it (%s)", m.overlay, how)
			if how != "epoll" {
				l.needBell(m) // no epoll to register the host listener in
			}
			l.arm(m)
			return
		}
		if !processExists(pid) {
			return
		}
	}
}

func (m *merged) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

func processExists(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// waitsOn says how process pid waits for connections on its fd: "epoll",
// "poll", "select", or "" when it is not seen waiting.
func waitsOn(pid, fd int) string {
	for _, epfd := range scanEpolls(pid) {
		if found, err := registered(pid, epfd, fd); err == nil && found {
			return "epoll"
		}
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return ""
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if how := threadWaitsOn(tid, fd); how != "" {
			return how
		}
	}
	return ""
}

// Poll and select calls, by architecture.
type waitCalls struct{ poll, ppoll, sel, pselect int64 }

var waitCallsOf = map[string]waitCalls{
	"amd64": {poll: 7, ppoll: 271, sel: 23, pselect: 270},
	"arm64": {poll: -1, ppoll: 73, sel: -1, pselect: 72},
}

// threadWaitsOn says whether thread tid is blocked in poll or select with
// fd among the descriptors it waits to read.
func threadWaitsOn(tid, fd int) string {
	b, err := readSmall(fmt.Sprintf("/proc/%d/syscall", tid))
	if err != nil {
		return ""
	}
	// "NR ARG1 … ARG6 SP PC" for a thread in a system call.
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return ""
	}
	nr, err1 := strconv.ParseInt(f[0], 10, 64)
	a1, err2 := strconv.ParseUint(strings.TrimPrefix(f[1], "0x"), 16, 64)
	a2, err3 := strconv.ParseUint(strings.TrimPrefix(f[2], "0x"), 16, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return ""
	}
	calls := waitCallsOf[runtime.GOARCH]
	switch nr {
	case calls.poll, calls.ppoll:
		if pollsFor(tid, a1, a2, fd) {
			return "poll"
		}
	case calls.sel, calls.pselect:
		if selectsFor(tid, int(a1), a2, fd) {
			return "select"
		}
	}
	return ""
}

// maxPollFDs bounds the pollfd array read.
const maxPollFDs = 4096

// pollsFor reads a poll's array of nfds struct pollfd at addr and says
// whether it waits to read fd.
func pollsFor(tid int, addr, nfds uint64, fd int) bool {
	if nfds == 0 || nfds > maxPollFDs {
		return false
	}
	buf := make([]byte, 8*nfds)
	if readMemory(tid, addr, buf) != nil {
		return false
	}
	for i := 0; i < len(buf); i += 8 {
		pfd := int32(binary.LittleEndian.Uint32(buf[i:]))
		events := binary.LittleEndian.Uint16(buf[i+4:])
		if int(pfd) == fd && events&0x1 != 0 { // POLLIN
			return true
		}
	}
	return false
}

// selectsFor reads a select's read set (nfds bits at addr) and says
// whether it holds fd.
func selectsFor(tid int, nfds int, addr uint64, fd int) bool {
	if addr == 0 || fd >= nfds || nfds > 1<<16 {
		return false
	}
	var word [8]byte
	if readMemory(tid, addr+uint64(fd/64)*8, word[:]) != nil {
		return false
	}
	return binary.LittleEndian.Uint64(word[:])&(1<<(fd%64)) != 0
}
