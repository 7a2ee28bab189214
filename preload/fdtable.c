/*
 * The per-fd state table, the ext slab (what a not-yet-connected socket
 * needs replayed), merged-listener objects and hidden fds.
 *
 * The table is indexed by fd number and mapped once (MAP_NORESERVE: only
 * pages of fd numbers in use are ever touched). A bitmap beside it marks
 * entries in use so close_range and the fork child can find them without
 * walking the table. Each entry has a tiny spinlock held only around
 * memory updates, never across a syscall.
 */
#include "shim.h"

#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_TABLE (1u << 20)
#define EXT_SLOTS 8192
#define MAX_LISTENERS 1024

struct slim_fd *_Atomic slim_table;
unsigned int slim_table_size;
int slim_hidden_base;
_Atomic int slim_nlisteners;

static _Atomic uint64_t *used_bits; /* one bit per table entry */
static struct slim_ext *ext_slab;
static _Atomic uint64_t ext_bits[EXT_SLOTS / 64];
static _Atomic unsigned int ext_hint;
static struct slim_listener listeners[MAX_LISTENERS];
static const struct slim_fd_events *events;

void slim_fd_events_set(const struct slim_fd_events *ev)
{
	events = ev;
}

static void *map_anon(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

int slim_table_init(void)
{
	struct rlimit rl;
	unsigned int size = MAX_TABLE;
	unsigned long soft = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < size)
			size = (unsigned int)rl.rlim_max;
		soft = rl.rlim_cur == RLIM_INFINITY ? MAX_TABLE : rl.rlim_cur;
	}
	if (size < 64)
		return -1;
	/*
	 * Hidden fds start half way up the soft limit (at least 512 when the
	 * limit allows, at most 16384 so the kernel's fd array stays small).
	 */
	unsigned long base = soft / 2;
	if (soft >= 1024 && base < 512)
		base = 512;
	if (base > 16384)
		base = 16384;
	if (base >= size)
		base = size / 2;
	slim_hidden_base = (int)base;

	struct slim_fd *t = map_anon((size_t)size * sizeof *t);
	used_bits = map_anon(((size_t)size + 63) / 64 * sizeof(uint64_t));
	ext_slab = map_anon((size_t)EXT_SLOTS * sizeof *ext_slab);
	if (t == NULL || used_bits == NULL || ext_slab == NULL)
		return -1;
	slim_table_size = size;
	atomic_store_explicit(&slim_table, t, memory_order_release);
	return 0;
}

/* ---- locking -------------------------------------------------------------- */

static inline void bit_set(unsigned int fd)
{
	atomic_fetch_or_explicit(&used_bits[fd / 64], 1ull << (fd % 64), memory_order_relaxed);
}

static inline void bit_clear(unsigned int fd)
{
	atomic_fetch_and_explicit(&used_bits[fd / 64], ~(1ull << (fd % 64)), memory_order_relaxed);
}

/*
 * The used bit is set before the lock is taken, so the fork child (which
 * resets the locks of used entries) sees every lock a vanished thread may
 * have held, except in a window of a few instructions.
 */
void slim_lock(int fd)
{
	struct slim_fd *e = &slim_table[fd];
	bit_set((unsigned int)fd);
	for (unsigned int spins = 0;; spins++) {
		uint32_t expect = 0;
		if (atomic_compare_exchange_weak_explicit(&e->lock, &expect, 1, memory_order_acquire,
							  memory_order_relaxed))
			return;
		if (spins > 64)
			sched_yield();
		else
			__builtin_ia32_pause();
	}
}

bool slim_trylock(int fd, unsigned int spins)
{
	struct slim_fd *e = &slim_table[fd];
	for (unsigned int i = 0; i <= spins; i++) {
		uint32_t expect = 0;
		if (atomic_compare_exchange_weak_explicit(&e->lock, &expect, 1, memory_order_acquire,
							  memory_order_relaxed)) {
			bit_set((unsigned int)fd);
			return true;
		}
		__builtin_ia32_pause();
	}
	return false;
}

void slim_unlock(int fd)
{
	struct slim_fd *e = &slim_table[fd];
	if (atomic_load_explicit(&e->kind, memory_order_relaxed) == SLIM_NONE && e->ext == 0)
		bit_clear((unsigned int)fd);
	else
		bit_set((unsigned int)fd);
	atomic_store_explicit(&e->lock, 0, memory_order_release);
}

int slim_next_used(unsigned int lo, unsigned int hi)
{
	if (hi >= slim_table_size)
		hi = slim_table_size - 1;
	while (lo <= hi) {
		uint64_t w = atomic_load_explicit(&used_bits[lo / 64], memory_order_relaxed);
		w &= ~0ull << (lo % 64);
		if (w != 0) {
			unsigned int fd = lo / 64 * 64 + (unsigned int)__builtin_ctzll(w);
			return fd <= hi ? (int)fd : -1;
		}
		lo = (lo / 64 + 1) * 64;
	}
	return -1;
}

/* ---- ext slab -------------------------------------------------------------- */

struct slim_ext *slim_ext_get(struct slim_fd *e, bool create)
{
	if (e->ext != 0)
		return &ext_slab[e->ext - 1];
	if (!create)
		return NULL;
	unsigned int start = atomic_load_explicit(&ext_hint, memory_order_relaxed);
	for (unsigned int i = 0; i < EXT_SLOTS / 64; i++) {
		unsigned int w = (start + i) % (EXT_SLOTS / 64);
		uint64_t v = atomic_load_explicit(&ext_bits[w], memory_order_relaxed);
		while (~v != 0) {
			int b = __builtin_ctzll(~v);
			if (atomic_compare_exchange_weak_explicit(&ext_bits[w], &v, v | (1ull << b),
								  memory_order_relaxed,
								  memory_order_relaxed)) {
				atomic_store_explicit(&ext_hint, w, memory_order_relaxed);
				unsigned int idx = w * 64 + (unsigned int)b;
				struct slim_ext *x = &ext_slab[idx];
				x->nregs = 0;
				x->nopts = 0;
				e->ext = idx + 1;
				return x;
			}
		}
	}
	return NULL;
}

void slim_ext_free(struct slim_fd *e)
{
	if (e->ext == 0)
		return;
	unsigned int idx = e->ext - 1;
	e->ext = 0;
	atomic_fetch_and_explicit(&ext_bits[idx / 64], ~(1ull << (idx % 64)), memory_order_relaxed);
}

/* ---- state transitions ---------------------------------------------------- */

void slim_take(int fd, struct slim_fd *old)
{
	struct slim_fd *e = &slim_table[fd];
	slim_lock(fd);
	old->kind = atomic_load_explicit(&e->kind, memory_order_relaxed);
	old->flags = e->flags;
	old->hkind = e->hkind;
	old->u = e->u;
	slim_ext_free(e);
	atomic_store_explicit(&e->kind, SLIM_NONE, memory_order_relaxed);
	e->flags = 0;
	e->hkind = 0;
	memset(&e->u, 0, sizeof e->u);
	slim_unlock(fd);
}

void slim_release(const struct slim_fd *old, int app_fd)
{
	if (old->kind != SLIM_LISTENER || old->u.l == NULL)
		return;
	struct slim_listener *l = old->u.l;
	/*
	 * Another number may still hold it (a dup): whether that one is
	 * FD_CLOEXEC now decides for the host listener. The last holder just
	 * lets go (UNLISTEN and close).
	 */
	if (atomic_load_explicit(&l->refs, memory_order_relaxed) > 1 && slim_listener_get(l)) {
		slim_listener_put(l, app_fd);
		slim_listener_sync_cloexec(l);
		slim_listener_put(l, -1);
	} else {
		slim_listener_put(l, app_fd);
	}
}

void slim_forget(int fd)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL)
		return;
	if (atomic_load_explicit(&e->kind, memory_order_relaxed) == SLIM_NONE && e->ext == 0)
		return;
	struct slim_fd old;
	slim_take(fd, &old);
	slim_release(&old, fd);
}

void slim_set_kind(int fd, int kind)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL)
		return;
	if (kind == SLIM_NONE &&
	    atomic_load_explicit(&e->kind, memory_order_relaxed) == SLIM_NONE && e->ext == 0)
		return; /* the common case: nothing stale */
	struct slim_fd old;
	slim_lock(fd);
	old.kind = atomic_load_explicit(&e->kind, memory_order_relaxed);
	old.u = e->u;
	slim_ext_free(e);
	memset(&e->u, 0, sizeof e->u);
	e->flags = 0;
	e->hkind = 0;
	atomic_store_explicit(&e->kind, (uint8_t)kind, memory_order_relaxed);
	slim_unlock(fd);
	/* Stale state: the number was closed behind our back (e.g. fclose). */
	if (old.kind == SLIM_LISTENER)
		slim_listener_put(old.u.l, -1);
}

void slim_set_conn(int fd, const struct slim_conn *c)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL)
		return;
	struct slim_fd old;
	slim_lock(fd);
	old.kind = atomic_load_explicit(&e->kind, memory_order_relaxed);
	old.u = e->u;
	slim_ext_free(e);
	e->flags = 0;
	e->hkind = 0;
	e->u.c = *c;
	atomic_store_explicit(&e->kind, SLIM_CONN, memory_order_relaxed);
	slim_unlock(fd);
	if (old.kind == SLIM_LISTENER)
		slim_listener_put(old.u.l, -1);
}

void slim_copy(int oldfd, int newfd)
{
	struct slim_fd *o = slim_ent(oldfd), *n = slim_ent(newfd);
	if (o == NULL || n == NULL || oldfd == newfd)
		return;
	struct slim_fd src = {0};
	slim_lock(oldfd);
	src.kind = atomic_load_explicit(&o->kind, memory_order_relaxed);
	src.u = o->u;
	if (src.kind == SLIM_LISTENER)
		atomic_fetch_add_explicit(&src.u.l->refs, 1, memory_order_relaxed);
	else if (src.kind == SLIM_CAND)
		/*
		 * Two numbers now share one unconnected socket: swapping a host
		 * socket in under one of them would split them. Give up on it.
		 */
		o->flags |= SLIM_F_NOACCEL;
	slim_unlock(oldfd);

	struct slim_fd old;
	slim_lock(newfd);
	old.kind = atomic_load_explicit(&n->kind, memory_order_relaxed);
	old.u = n->u;
	slim_ext_free(n);
	n->flags = 0;
	n->hkind = 0;
	memset(&n->u, 0, sizeof n->u);
	if (src.kind == SLIM_CONN || src.kind == SLIM_LISTENER) {
		n->u = src.u;
		atomic_store_explicit(&n->kind, src.kind, memory_order_relaxed);
	} else {
		atomic_store_explicit(&n->kind, SLIM_NONE, memory_order_relaxed);
	}
	slim_unlock(newfd);
	if (old.kind == SLIM_LISTENER)
		slim_listener_put(old.u.l, -1);
}

/* ---- listeners ---------------------------------------------------------- */

struct slim_listener *slim_listener_new(int hidden, uint32_t ip, uint16_t port)
{
	for (int i = 0; i < MAX_LISTENERS; i++) {
		struct slim_listener *l = &listeners[i];
		int expect = 0;
		if (atomic_load_explicit(&l->refs, memory_order_relaxed) != 0 ||
		    !atomic_compare_exchange_strong_explicit(&l->refs, &expect, 1,
							     memory_order_acquire,
							     memory_order_relaxed))
			continue;
		atomic_store_explicit(&l->hidden, hidden, memory_order_relaxed);
		atomic_store_explicit(&l->state, SLIM_L_PENDING, memory_order_relaxed);
		l->ip = ip;
		l->port = port;
		l->v6 = false;
		l->backlog = 0;
		l->owner = getpid();
		atomic_store_explicit(&l->waited, 0, memory_order_relaxed);
		atomic_store_explicit(&l->reg_lock, 0, memory_order_relaxed);
		l->nregs = 0;
		l->regs_lost = false;
		atomic_fetch_add_explicit(&slim_nlisteners, 1, memory_order_relaxed);
		return l;
	}
	return NULL;
}

/*
 * Drops one reference; the last one closes the host listener. Only the
 * process that asked for it withdraws it from the directory (UNLISTEN): a
 * forked child closing its copy must not unpublish the parent's listener.
 * app_fd is the app's listening fd, still open, when the app closes it;
 * else -1. UNLISTEN carries the host listener, not the app's socket, and
 * waits for the router's OK: a copy of the app's socket in the router's
 * hands would keep its port taken, and a server that closes its listener
 * and listens again at once (iperf3 -s) would get EADDRINUSE. A listener
 * without a live host listener (given away, shut down) has no entry left.
 */
void slim_listener_put(struct slim_listener *l, int app_fd)
{
	int hidden = atomic_load_explicit(&l->hidden, memory_order_relaxed);
	int state = atomic_load_explicit(&l->state, memory_order_relaxed);
	pid_t owner = l->owner;
	if (atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
		return;
	atomic_fetch_sub_explicit(&slim_nlisteners, 1, memory_order_relaxed);
	bool published = state == SLIM_L_PENDING || state == SLIM_L_ARMED;
	if (app_fd >= 0 && owner == getpid() && published && events != NULL)
		events->unlisten(hidden >= 0 ? hidden : app_fd);
	if (hidden >= 0)
		slim_hidden_close(hidden);
}

struct slim_listener *slim_listener_find(uint32_t ip, uint16_t port)
{
	for (int i = 0; i < MAX_LISTENERS; i++) {
		struct slim_listener *l = &listeners[i];
		if (atomic_load_explicit(&l->refs, memory_order_relaxed) == 0 || l->port != port ||
		    l->ip != ip || !slim_listener_get(l))
			continue;
		if (l->port == port && l->ip == ip)
			return l;
		slim_listener_put(l, -1);
	}
	return NULL;
}

bool slim_listener_get(struct slim_listener *l)
{
	int refs = atomic_load_explicit(&l->refs, memory_order_relaxed);
	while (refs > 0)
		if (atomic_compare_exchange_weak_explicit(&l->refs, &refs, refs + 1,
							  memory_order_acquire, memory_order_relaxed))
			return true;
	return false;
}

/* Does any app fd of listener l survive exec (no FD_CLOEXEC)? */
static bool listener_survives_exec(const struct slim_listener *l)
{
	struct slim_fd *t = slim_table;
	SLIM_FOR_EACH_USED(fd) {
		if (atomic_load_explicit(&t[fd].kind, memory_order_relaxed) != SLIM_LISTENER ||
		    __atomic_load_n(&t[fd].u.l, __ATOMIC_RELAXED) != l)
			continue;
		int f = REAL(fcntl)(fd, F_GETFD);
		if (f >= 0 && !(f & FD_CLOEXEC))
			return true;
	}
	return false;
}

void slim_set_cloexec(int fd, bool on)
{
	int f = REAL(fcntl)(fd, F_GETFD);
	if (f < 0)
		return;
	int want = on ? (f | FD_CLOEXEC) : (f & ~FD_CLOEXEC);
	if (want != f)
		REAL(fcntl)(fd, F_SETFD, want);
}

void slim_listener_sync_cloexec(struct slim_listener *l)
{
	int hidden = atomic_load_explicit(&l->hidden, memory_order_relaxed);
	if (hidden < 0)
		return;
	int saved = errno;
	slim_set_cloexec(hidden, !listener_survives_exec(l));
	errno = saved;
}

void slim_fd_cloexec_changed(int fd)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL || atomic_load_explicit(&e->kind, memory_order_relaxed) != SLIM_LISTENER)
		return;
	slim_lock(fd);
	struct slim_listener *l = e->u.l;
	bool ok = atomic_load_explicit(&e->kind, memory_order_relaxed) == SLIM_LISTENER &&
		  l != NULL && slim_listener_get(l);
	slim_unlock(fd);
	if (!ok)
		return;
	slim_listener_sync_cloexec(l);
	slim_listener_put(l, -1);
}

/* ---- hidden fds ------------------------------------------------------------ */

void slim_mark_hidden(int fd, int hkind)
{
	struct slim_fd *e = &slim_table[fd];
	slim_lock(fd);
	slim_ext_free(e);
	e->flags = 0;
	e->hkind = (uint8_t)hkind;
	memset(&e->u, 0, sizeof e->u);
	atomic_store_explicit(&e->kind, SLIM_HIDDEN_FD, memory_order_relaxed);
	slim_unlock(fd);
}

int slim_hide(int fd, int hkind)
{
	int nfd = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, slim_hidden_base);
	if (nfd >= 0) {
		REAL(close)(fd);
	} else {
		/* No room up there (soft limit lowered?): keep the number. */
		nfd = fd;
	}
	if ((unsigned int)nfd >= slim_table_size) {
		REAL(close)(nfd);
		return -1;
	}
	slim_mark_hidden(nfd, hkind);
	return nfd;
}

static int close_range_raw(unsigned int lo, unsigned int hi)
{
	return (int)syscall(SYS_close_range, lo, hi, 0);
}

int slim_hide_many(int *fds, int n, int hkind)
{
	int old[SLIM_POOL_CAP];
	int nold = 0, out = 0;
	for (int i = 0; i < n; i++) {
		int fd = fds[i];
		int nfd = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, slim_hidden_base);
		if (nfd >= 0) {
			if (nold < SLIM_POOL_CAP)
				old[nold++] = fd;
			else
				REAL(close)(fd);
		} else {
			nfd = fd; /* no room up there: keep the number */
		}
		if ((unsigned int)nfd >= slim_table_size) {
			REAL(close)(nfd);
			continue;
		}
		slim_mark_hidden(nfd, hkind);
		fds[out++] = nfd;
	}
	/* The old numbers, in runs of consecutive fds: one close_range each. */
	for (int i = 1; i < nold; i++) {
		int v = old[i], j = i;
		for (; j > 0 && old[j - 1] > v; j--)
			old[j] = old[j - 1];
		old[j] = v;
	}
	for (int i = 0; i < nold;) {
		int j = i;
		while (j + 1 < nold && old[j + 1] == old[j] + 1)
			j++;
		if (j == i || close_range_raw((unsigned int)old[i], (unsigned int)old[j]) != 0)
			for (int k = i; k <= j; k++)
				REAL(close)(old[k]);
		i = j + 1;
	}
	return out;
}

void slim_hidden_ref(int fd, struct slim_listener *l, int slot)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL)
		return;
	slim_lock(fd);
	if (e->hkind == SLIM_H_LISTENER)
		e->u.l = l;
	else if (e->hkind == SLIM_H_ROUTER)
		e->u.slot = slot;
	slim_unlock(fd);
}

void slim_hidden_close(int fd)
{
	struct slim_fd *e = slim_ent(fd);
	if (e != NULL && atomic_load_explicit(&e->kind, memory_order_relaxed) == SLIM_HIDDEN_FD) {
		slim_lock(fd);
		atomic_store_explicit(&e->kind, SLIM_NONE, memory_order_relaxed);
		e->hkind = 0;
		memset(&e->u, 0, sizeof e->u);
		slim_unlock(fd);
	}
	REAL(close)(fd);
}

/*
 * The app dup2s/dup3s onto a number we hold. It believes the number is
 * free, so we step aside: duplicate ours to another hidden number, point
 * whatever referenced it there, and let the app's dup2 close the old one.
 */
void slim_hidden_evict(int fd)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL || atomic_load_explicit(&e->kind, memory_order_relaxed) != SLIM_HIDDEN_FD)
		return;
	int saved = errno;
	slim_lock(fd);
	int hkind = e->hkind;
	struct slim_listener *l = e->u.l;
	int slot = e->u.slot;
	slim_unlock(fd);

	int nfd = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, slim_hidden_base);
	if (nfd >= 0 && (unsigned int)nfd >= slim_table_size) {
		REAL(close)(nfd);
		nfd = -1;
	}
	if (nfd >= 0) {
		slim_mark_hidden(nfd, hkind);
		if (hkind == SLIM_H_LISTENER) {
			slim_hidden_ref(nfd, l, 0);
			int expect = fd;
			atomic_compare_exchange_strong(&l->hidden, &expect, nfd);
		} else {
			if (hkind == SLIM_H_ROUTER)
				slim_hidden_ref(nfd, NULL, slot);
			if (events != NULL)
				events->hidden_moved(hkind, slot, fd, nfd);
		}
	} else if (hkind == SLIM_H_LISTENER) {
		int expect = fd;
		atomic_compare_exchange_strong(&l->hidden, &expect, -1);
	} else if (events != NULL) {
		events->hidden_moved(hkind, slot, fd, -1);
	}
	/* The number is the app's now; the app's dup2 closes our old copy. */
	slim_lock(fd);
	atomic_store_explicit(&e->kind, SLIM_NONE, memory_order_relaxed);
	e->hkind = 0;
	memset(&e->u, 0, sizeof e->u);
	slim_unlock(fd);
	errno = saved;
}

/* ---- fork ------------------------------------------------------------------ */

void slim_table_atfork_child(void)
{
	if (atomic_load_explicit(&slim_table, memory_order_relaxed) == NULL)
		return;
	/* Locks held by threads that do not exist in the child. */
	SLIM_FOR_EACH_USED(fd) {
		atomic_store_explicit(&slim_table[fd].lock, 0, memory_order_relaxed);
	}
}
