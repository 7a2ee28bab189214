/*
 * Closing and duplicating: close, dup, dup2, dup3, fcntl/fcntl64 (F_DUPFD,
 * F_DUPFD_CLOEXEC, F_SETFD), ioctl (FIOCLEX, FIONCLEX), close_range and
 * closefrom.
 *
 * Hidden fds are invisible to the app: it believes their numbers are free.
 * So close() of a hidden number returns 0 and leaves ours open (a "close
 * every fd" loop must not take the router connection or a host listener
 * away); dup*() of a hidden number fails with EBADF; dup2/dup3 onto one
 * first moves ours to another number; close_range/closefrom skip them.
 */
#include "shim.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

SLIM_EXPORT int close(int fd)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL)
		return REAL(close)(fd);
	int kind = atomic_load_explicit(&e->kind, memory_order_relaxed);
	if (kind == SLIM_HIDDEN_FD)
		return 0;
	if (kind != SLIM_NONE || e->ext != 0) {
		int saved = errno;
		struct slim_fd old;
		slim_take(fd, &old);
		if (old.kind == SLIM_HIDDEN_FD) {
			/* Raced with us hiding it: keep it that way. */
			slim_lock(fd);
			e->hkind = old.hkind;
			e->u = old.u;
			atomic_store_explicit(&e->kind, SLIM_HIDDEN_FD, memory_order_relaxed);
			slim_unlock(fd);
			errno = saved;
			return 0;
		}
		slim_release(&old, fd); /* UNLISTEN needs fd still open */
		errno = saved;
	}
	return REAL(close)(fd);
}

static inline bool hidden(int fd)
{
	return slim_kind_of(fd) == SLIM_HIDDEN_FD;
}

/* A new number r for fd's file: r takes fd's state. Returns r. */
static int copied(int fd, int r)
{
	if (r >= 0 && slim_ent(r) != NULL) {
		int saved = errno;
		slim_copy(fd, r);
		slim_fd_cloexec_changed(r);
		errno = saved;
	}
	return r;
}

SLIM_EXPORT int dup(int fd)
{
	if (unlikely(hidden(fd))) {
		errno = EBADF;
		return -1;
	}
	int r = REAL(dup)(fd);
	return copied(fd, r);
}

static int do_dup3(int oldfd, int newfd, int flags, bool is_dup2)
{
	if (slim_ent(newfd) == NULL && slim_ent(oldfd) == NULL)
		return is_dup2 ? REAL(dup2)(oldfd, newfd) : REAL(dup3)(oldfd, newfd, flags);
	if (hidden(oldfd)) {
		errno = EBADF;
		return -1;
	}
	if (oldfd == newfd)
		return is_dup2 ? REAL(dup2)(oldfd, newfd) : REAL(dup3)(oldfd, newfd, flags);
	if (hidden(newfd))
		slim_hidden_evict(newfd);
	int r = is_dup2 ? REAL(dup2)(oldfd, newfd) : REAL(dup3)(oldfd, newfd, flags);
	if (r < 0)
		return r;
	int saved = errno;
	/* The dup closed newfd's old file: its state goes, oldfd's is copied. */
	if (slim_ent(oldfd) != NULL)
		slim_copy(oldfd, newfd);
	else
		slim_forget(newfd);
	slim_fd_cloexec_changed(newfd);
	errno = saved;
	return r;
}

SLIM_EXPORT int dup2(int oldfd, int newfd)
{
	return do_dup3(oldfd, newfd, 0, true);
}

SLIM_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	return do_dup3(oldfd, newfd, flags, false);
}

static int do_fcntl(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	if (unlikely(cmd == F_SETFD)) {
		int r = real(fd, cmd, arg);
		if (r == 0) {
			int saved = errno;
			slim_cand_cloexec(fd, ((int)(intptr_t)arg & FD_CLOEXEC) != 0);
			slim_fd_cloexec_changed(fd);
			errno = saved;
		}
		return r;
	}
	if (likely(cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC))
		return real(fd, cmd, arg);
	if (hidden(fd)) {
		errno = EBADF;
		return -1;
	}
	int r = real(fd, cmd, (int)(intptr_t)arg);
	return copied(fd, r);
}

/*
 * The third argument is read as a pointer, as glibc does: every fcntl
 * argument (int, long, pointer) travels in the same register.
 */
SLIM_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(REAL(fcntl), fd, cmd, arg);
}

SLIM_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(REAL(fcntl64), fd, cmd, arg);
}

/*
 * ioctl: only FIOCLEX/FIONCLEX matter (a merged listener's host listener
 * follows the app fd's FD_CLOEXEC); FIONBIO needs nothing (the flag is
 * read back at connect). Like fcntl, the argument travels as a pointer.
 */
SLIM_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	int r = REAL(ioctl)(fd, req, arg);
	if (unlikely(req == FIOCLEX || req == FIONCLEX) && r == 0) {
		int saved = errno;
		slim_cand_cloexec(fd, req == FIOCLEX);
		slim_fd_cloexec_changed(fd);
		errno = saved;
	}
	return r;
}

static int real_close_range(unsigned int lo, unsigned int hi, int flags)
{
	if (REAL(close_range) != NULL)
		return REAL(close_range)(lo, hi, flags);
	return (int)syscall(SYS_close_range, lo, hi, flags);
}

/*
 * close_range: our hidden fds split the range; table state of what is
 * closed is cleared first (like close). CLOSE_RANGE_CLOEXEC only marks fds
 * (ours already are), so it passes through.
 */
SLIM_EXPORT int close_range(unsigned int lo, unsigned int hi, int flags)
{
	if (atomic_load_explicit(&slim_table, memory_order_relaxed) == NULL || lo > hi ||
	    lo >= slim_table_size)
		return real_close_range(lo, hi, flags);
	if (flags & CLOSE_RANGE_CLOEXEC) {
		/* Only marks fds (ours already are); candidates track it. */
		int r = real_close_range(lo, hi, flags);
		if (r == 0) {
			int saved = errno;
			unsigned int top = hi < slim_table_size - 1 ? hi : slim_table_size - 1;
			for (int fd = slim_next_used(lo, top); fd >= 0;
			     fd = (unsigned int)fd < top ? slim_next_used((unsigned int)fd + 1, top) : -1)
				slim_cand_cloexec(fd, 1);
			errno = saved;
		}
		return r;
	}
	int saved = errno;
	int ret = 0, err = 0;
	unsigned int start = lo, scan = lo;
	for (;;) {
		int fd = slim_next_used(scan, hi); /* always < slim_table_size */
		if (fd < 0)
			break;
		if (hidden(fd)) {
			if ((unsigned int)fd > start &&
			    real_close_range(start, (unsigned int)fd - 1, flags) != 0 && ret == 0) {
				ret = -1;
				err = errno;
			}
			start = (unsigned int)fd + 1;
		} else {
			slim_forget(fd);
		}
		if ((unsigned int)fd >= hi)
			break;
		scan = (unsigned int)fd + 1;
	}
	if (start <= hi && real_close_range(start, hi, flags) != 0 && ret == 0) {
		ret = -1;
		err = errno;
	}
	errno = ret == 0 ? saved : err;
	return ret;
}

SLIM_EXPORT void closefrom(int lowfd)
{
	if (atomic_load_explicit(&slim_table, memory_order_relaxed) == NULL) {
		if (REAL(closefrom) != NULL)
			REAL(closefrom)(lowfd);
		return;
	}
	int saved = errno;
	if (lowfd < 0)
		lowfd = 0;
	if (close_range((unsigned int)lowfd, ~0u, 0) != 0) {
		/* No close_range (old kernel): one by one up to the soft limit. */
		struct rlimit rl;
		long max = 1024;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
			max = (long)rl.rlim_cur;
		for (long fd = lowfd; fd < max; fd++)
			close((int)fd);
	}
	errno = saved;
}
