package router

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// A container's pool sockets are host sockets: kernel memory of the host,
// however long the container keeps them, even in flight in a unix socket
// it never reads. The router counts the ones that still exist and refuses
// POOL beyond the container's quota (limits.pool_sockets).
//
// It learns which still exist from the kernel, with a witness: before a
// pool socket is sent, it is added to an epoll instance of the router,
// with its cookie as the event data. epoll holds no reference to the
// socket, and forgets it by itself when the socket's last descriptor
// anywhere is closed (in the container, in flight, or the router's own
// if the reply was never sent). /proc/self/fdinfo of the epoll instance
// lists what is left. The router never waits on these instances; the
// cost is one wait-queue entry per pool socket.

// witnessShards spreads a container's pool sockets over several epoll
// instances, so that their wakeups do not all meet on one lock.
const witnessShards = 8

// poolRecountInterval is the least time between two counts of one
// container's pool sockets on the request path when the last count found
// it holding half its quota or more; in between, it is refused on that
// count. A container that held little at the last count is counted again
// at once: its sockets come and go, and counting them is cheap.
const poolRecountInterval = 100 * time.Millisecond

// poolWitness knows which pool sockets handed to one container still exist.
type poolWitness struct {
	epfds [witnessShards]int
}

func newPoolWitness() (*poolWitness, error) {
	w := &poolWitness{}
	for i := range w.epfds {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			w.epfds[i] = -1
			w.close()
			return nil, fmt.Errorf("pool socket witness: %w", err)
		}
		w.epfds[i] = fd
	}
	return w, nil
}

// add starts witnessing the socket at fd, whose cookie is cookie.
func (w *poolWitness) add(fd int, cookie uint64) error {
	ev := unix.EpollEvent{Fd: int32(uint32(cookie)), Pad: int32(uint32(cookie >> 32))}
	if err := unix.EpollCtl(w.epfds[cookie%witnessShards], unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("witnessing a pool socket (fs.epoll.max_user_watches?): %w", err)
	}
	return nil
}

// alive returns the cookies of the witnessed sockets that still exist.
func (w *poolWitness) alive() (map[uint64]bool, error) {
	alive := map[uint64]bool{}
	for _, fd := range w.epfds {
		info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
		if err != nil {
			return nil, fmt.Errorf("pool socket witness: %w", err)
		}
		if err := parseEpollData(info, alive); err != nil {
			return nil, err
		}
	}
	return alive, nil
}

// parseEpollData adds the data of every item of an epoll instance's
// fdinfo ("tfd: FD events: HEX data: HEX ...") to set.
func parseEpollData(info []byte, set map[uint64]bool) error {
	lines := bufio.NewScanner(bytes.NewReader(info))
	for lines.Scan() {
		fields := bytes.Fields(lines.Bytes())
		if len(fields) < 6 || string(fields[0]) != "tfd:" || string(fields[4]) != "data:" {
			continue
		}
		data, err := strconv.ParseUint(string(fields[5]), 16, 64)
		if err != nil {
			return fmt.Errorf("pool socket witness: epoll fdinfo line %q: %w", lines.Text(), err)
		}
		set[data] = true
	}
	return lines.Err()
}

func (w *poolWitness) close() {
	for _, fd := range w.epfds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// poolAccount is a container's share of host sockets.
type poolAccount struct {
	witness *poolWitness
	quota   int

	mu      sync.Mutex
	held    int       // at the last count, plus what was reserved since
	pending int       // reserved and not yet settled
	counted time.Time // of the last count
	exact   int       // what the last count found
	refused uint64    // POOL requests refused for the quota
	handed  uint64    // pool sockets handed out since the router started
	// credited is the accelerated setups of STATS reports accepted: at
	// most one per pool socket handed out (shimstats.go).
	credited uint64
	// ahead is the sockets made ahead for the container's shim
	// connections' next POOL (poolahead_linux.go): witnessed, marked and
	// counted in held like those handed out, until taken or closed.
	ahead aheadShelf
}

// reserve books up to n sockets under the quota and returns how many
// (0: refused) and how many the container holds with them. Before it
// refuses, it closes the sockets made ahead for the container's shim
// connections: they wait in the router, and must never cost a shim the
// sockets it asks for.
func (a *poolAccount) reserve(n int, now time.Time) (granted, held int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	granted = a.book(n, a.quota, now)
	if granted == 0 && a.dropAheadLocked(func(*aheadBatch) bool { return true }) > 0 {
		granted = a.book(n, a.quota, now)
	}
	if granted == 0 {
		a.refused++
	}
	return granted, a.held
}

// reserveAhead books up to n sockets to make ahead, only while the
// container holds at most half its quota with them: sockets made ahead
// never bring a container near its quota. It returns how many (0: none).
func (a *poolAccount) reserveAhead(n int, now time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ahead.closed {
		return 0
	}
	return a.book(n, a.quota/2, now)
}

// book reserves up to n sockets while the container holds at most limit,
// counting again first if the last count may be stale. The caller holds
// a.mu.
func (a *poolAccount) book(n, limit int, now time.Time) int {
	if a.held+n > limit && (a.exact < a.quota/2 || now.Sub(a.counted) >= poolRecountInterval) {
		a.recount(now)
	}
	granted := min(n, limit-a.held)
	if granted <= 0 {
		return 0
	}
	a.held += granted
	a.pending += granted
	return granted
}

// settle ends a reservation: of reserved sockets, made were witnessed
// (the others were not made, or closed).
func (a *poolAccount) settle(reserved, made int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.held -= reserved - made
	a.pending -= reserved
}

// handOut counts n sockets handed to a shim (for the credit of its
// setups, creditSetups).
func (a *poolAccount) handOut(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.handed += uint64(n)
}

// recount counts the container's sockets again and returns the cookies of
// those that exist. The caller holds a.mu.
func (a *poolAccount) recount(now time.Time) (map[uint64]bool, error) {
	alive, err := a.witness.alive()
	if err != nil {
		return nil, err
	}
	a.exact, a.counted = len(alive), now
	a.held = a.exact + a.pending
	return alive, nil
}

// count counts the container's sockets (for the sweep) and returns the
// cookies of those that exist at now.
func (a *poolAccount) count(now time.Time) (map[uint64]bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.recount(now)
}

// creditSetups credits up to n accelerated setups that the container's
// shims reported, one per pool socket handed out, and returns how many.
func (a *poolAccount) creditSetups(n uint64) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	credit := min(n, a.handed-a.credited)
	a.credited += credit
	return credit
}

// poolView is what the control API shows of an account.
type poolView struct {
	held, quota int
	refused     uint64
}

func (a *poolAccount) view() poolView {
	a.mu.Lock()
	defer a.mu.Unlock()
	return poolView{held: a.held, quota: a.quota, refused: a.refused}
}

// newPoolAccount is a new container's pool account.
func (r *Router) newPoolAccount() (*poolAccount, error) {
	w, err := newPoolWitness()
	if err != nil {
		return nil, err
	}
	return &poolAccount{witness: w, quota: r.limits().PoolSockets}, nil
}

// closeContainers closes the sockets made ahead for the containers and
// releases their witnesses (the sockets they witness are the containers'
// and live on).
func (r *Router) closeContainers() { r.containers.close() }

// errNoWitness is the refusal of a POOL when the router cannot count
// what it would hand out.
var errNoWitness = errors.New("cannot count the host sockets handed out")
