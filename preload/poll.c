/*
 * poll, ppoll, select and pselect over merged listeners: a merged
 * listener's hidden host listener is waited on too, and its readiness is
 * reported on the app's fd. A process without merged listeners pays one
 * relaxed atomic load.
 *
 * The extended pollfd array lives on the stack up to 256 entries; larger
 * calls use an mmap'd scratch array for the duration of the call (such a
 * call is O(n) in the kernel anyway). If that mmap fails, the call goes to
 * libc with the app's fds only (host connections then wait until the
 * overlay listener wakes the app).
 *
 * select and pselect with a merged listener in the read set are carried
 * out with ppoll, since hidden fds usually sit above FD_SETSIZE; results
 * are mapped back with the kernel's select semantics (POLLNVAL → EBADF),
 * and select's timeout is updated with the time left, as Linux does.
 */
#include "shim.h"

#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define STACK_FDS 256

int slim_merged_hidden(int fd, bool want)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL || atomic_load_explicit(&e->kind, memory_order_relaxed) != SLIM_LISTENER)
		return -1;
	/* Listener objects live in a static array: a stale read is harmless. */
	struct slim_listener *l = __atomic_load_n(&e->u.l, __ATOMIC_RELAXED);
	if (l == NULL)
		return -1;
	if (!want || likely(atomic_load_explicit(&l->state, memory_order_relaxed) == SLIM_L_ARMED))
		return slim_listener_host(l);
	/* The app waits to accept: time to arm (arm.c). */
	if ((l = slim_listener_of(fd)) == NULL)
		return -1;
	int saved = errno;
	int h = slim_listener_want(l, fd);
	slim_listener_put(l, -1);
	errno = saved;
	return h;
}

/* The app waits for fd to be readable (a listener: to accept). */
static inline bool wants_input(short events)
{
	return (events & (POLLIN | POLLRDNORM)) != 0;
}

static inline bool any_listeners(void)
{
	return atomic_load_explicit(&slim_nlisteners, memory_order_relaxed) != 0;
}

struct scratch {
	struct pollfd stack_fds[STACK_FDS];
	int stack_map[STACK_FDS];
	struct pollfd *fds;
	int *map; /* index of the app's entry each extra entry stands for */
	size_t mapped;
};

static bool scratch_get(struct scratch *s, size_t n)
{
	s->mapped = 0;
	if (n <= STACK_FDS) {
		s->fds = s->stack_fds;
		s->map = s->stack_map;
		return true;
	}
	size_t size = n * (sizeof(struct pollfd) + sizeof(int));
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return false;
	s->fds = p;
	s->map = (int *)(s->fds + n);
	s->mapped = size;
	return true;
}

static void scratch_put(struct scratch *s)
{
	if (s->mapped) {
		int saved = errno;
		munmap(s->fds, s->mapped);
		errno = saved;
	}
}

/* poll/ppoll with merged listeners. is_ppoll picks the libc entry point. */
static int merged_poll(struct pollfd *fds, nfds_t n, int timeout, const struct timespec *ts,
		       const sigset_t *mask, bool is_ppoll)
{
	size_t extra = 0;
	for (nfds_t i = 0; i < n; i++)
		if (fds[i].fd >= 0 && slim_merged_hidden(fds[i].fd, wants_input(fds[i].events)) >= 0)
			extra++;
	struct scratch s;
	if (extra == 0 || n + extra > (nfds_t)0x7fffffff || !scratch_get(&s, n + extra))
		return is_ppoll ? REAL(ppoll)(fds, n, ts, mask) : REAL(poll)(fds, n, timeout);

	memcpy(s.fds, fds, n * sizeof *fds);
	size_t k = n;
	for (nfds_t i = 0; i < n; i++) {
		int h = fds[i].fd >= 0 ? slim_merged_hidden(fds[i].fd, false) : -1;
		if (h < 0 || k == n + extra)
			continue;
		s.fds[k] = (struct pollfd){h, fds[i].events, 0};
		s.map[k - n] = (int)i;
		k++;
	}
	int r = is_ppoll ? REAL(ppoll)(s.fds, k, ts, mask) : REAL(poll)(s.fds, k, timeout);
	if (r < 0) {
		scratch_put(&s);
		return r;
	}
	for (nfds_t i = 0; i < n; i++)
		fds[i].revents = s.fds[i].revents;
	/* Only readiness to accept: a host listener's own troubles are ours. */
	for (size_t j = n; j < k; j++) {
		struct pollfd *app = &fds[s.map[j - n]];
		app->revents |= s.fds[j].revents & app->events & (POLLIN | POLLRDNORM);
	}
	r = 0;
	for (nfds_t i = 0; i < n; i++)
		if (fds[i].revents)
			r++;
	scratch_put(&s);
	return r;
}

SLIM_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (likely(!any_listeners()) || fds == NULL)
		return REAL(poll)(fds, n, timeout);
	return merged_poll(fds, n, timeout, NULL, NULL, false);
}

SLIM_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
		      const sigset_t *mask)
{
	if (likely(!any_listeners()) || fds == NULL)
		return REAL(ppoll)(fds, n, ts, mask);
	return merged_poll(fds, n, 0, ts, mask, true);
}

/* ---- select ----------------------------------------------------------------- */

#define RSET (POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR)
#define WSET (POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR)
#define XSET (POLLPRI)

/* Any merged listener in the read set (each is armed: the app waits). */
static bool has_merged(int nfds, const fd_set *r)
{
	bool any = false;
	for (int fd = 0; fd < nfds; fd++)
		if (FD_ISSET(fd, r) && slim_merged_hidden(fd, true) >= 0)
			any = true;
	return any;
}

static int merged_select(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
			 const sigset_t *mask)
{
	size_t count = 0, extra = 0;
	for (int fd = 0; fd < nfds; fd++) {
		bool in_r = FD_ISSET(fd, r);
		if (in_r || (w && FD_ISSET(fd, w)) || (x && FD_ISSET(fd, x)))
			count++;
		if (in_r && slim_merged_hidden(fd, false) >= 0)
			extra++;
	}
	struct scratch s;
	if (!scratch_get(&s, count + extra))
		return REAL(pselect)(nfds, r, w, x, ts, mask);
	size_t k = 0;
	for (int fd = 0; fd < nfds; fd++) {
		short ev = 0;
		if (FD_ISSET(fd, r))
			ev |= POLLIN;
		if (w && FD_ISSET(fd, w))
			ev |= POLLOUT;
		if (x && FD_ISSET(fd, x))
			ev |= POLLPRI;
		if (ev)
			s.fds[k++] = (struct pollfd){fd, ev, 0};
	}
	size_t base = k;
	for (size_t i = 0; i < base; i++) {
		int h = (s.fds[i].events & POLLIN) ? slim_merged_hidden(s.fds[i].fd, false) : -1;
		if (h < 0 || k == count + extra)
			continue;
		s.fds[k] = (struct pollfd){h, POLLIN, 0};
		s.map[k - base] = (int)i;
		k++;
	}
	int ret = REAL(ppoll)(s.fds, k, ts, mask);
	if (ret < 0) {
		scratch_put(&s);
		return ret;
	}
	for (size_t i = 0; i < base; i++) {
		if (s.fds[i].revents & POLLNVAL) {
			scratch_put(&s);
			errno = EBADF;
			return -1;
		}
	}
	for (size_t j = base; j < k; j++)
		s.fds[s.map[j - base]].revents |= s.fds[j].revents & (POLLIN | POLLRDNORM);
	int n = 0;
	for (int fd = 0; fd < nfds; fd++) {
		FD_CLR(fd, r);
		if (w)
			FD_CLR(fd, w);
		if (x)
			FD_CLR(fd, x);
	}
	for (size_t i = 0; i < base; i++) {
		struct pollfd *p = &s.fds[i];
		if ((p->events & POLLIN) && (p->revents & RSET)) {
			FD_SET(p->fd, r);
			n++;
		}
		if ((p->events & POLLOUT) && (p->revents & WSET)) {
			FD_SET(p->fd, w);
			n++;
		}
		if ((p->events & POLLPRI) && (p->revents & XSET)) {
			FD_SET(p->fd, x);
			n++;
		}
	}
	scratch_put(&s);
	return n;
}

SLIM_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
	if (likely(!any_listeners()) || r == NULL || nfds <= 0)
		return REAL(select)(nfds, r, w, x, tv);
	if (nfds > FD_SETSIZE)
		nfds = FD_SETSIZE;
	if (!has_merged(nfds, r))
		return REAL(select)(nfds, r, w, x, tv);
	if (tv == NULL)
		return merged_select(nfds, r, w, x, NULL, NULL);
	if (tv->tv_sec < 0 || tv->tv_usec < 0) {
		errno = EINVAL;
		return -1;
	}
	struct timespec ts = {tv->tv_sec + tv->tv_usec / 1000000, (tv->tv_usec % 1000000) * 1000};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int ret = merged_select(nfds, r, w, x, &ts, NULL);
	int saved = errno;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int64_t left = ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000) -
		       ((int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
	if (left < 0 || ret == 0)
		left = 0;
	tv->tv_sec = left / 1000000;
	tv->tv_usec = left % 1000000;
	errno = saved;
	return ret;
}

SLIM_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
			const sigset_t *mask)
{
	if (likely(!any_listeners()) || r == NULL || nfds <= 0)
		return REAL(pselect)(nfds, r, w, x, ts, mask);
	if (nfds > FD_SETSIZE)
		nfds = FD_SETSIZE;
	if (!has_merged(nfds, r))
		return REAL(pselect)(nfds, r, w, x, ts, mask);
	return merged_select(nfds, r, w, x, ts, mask);
}
