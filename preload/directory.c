/*
 * The directory table (docs/protocol.md §2): DIR/directory, rewritten in
 * place by the router under a sequence lock and mapped read-only here.
 *
 * Mapped lazily on the first lookup. Once a second the path is stat()ed
 * again: a router that recreated the file (new inode) gets remapped, and a
 * file that was absent gets picked up. Old mappings are never unmapped (a
 * reader may still be in one); that leaks one mapping per router restart.
 * An absent or invalid file means nothing is accelerated.
 *
 * The file is root's (mode 0600, docs/secure.md): a process of another
 * user, denied the path, asks the router for a read-only fd of it (TABLE),
 * which the router gives only to its containers. The path is still what
 * tells a new file from the mapped one (stat needs no read permission).
 *
 * A process that chrooted (chroot.c) maps the file before the root
 * changes; the path is out of its reach afterwards, so it keeps that
 * mapping (a restarted router rewrites the same file in place) until the
 * router moves to a larger file, whose fd it then gets with TABLE.
 */
#include "shim.h"

#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAPS 8

struct dirmap {
	const uint8_t *base;
	uint32_t cap;
	dev_t dev;
	ino_t ino;
};

static struct dirmap maps[MAPS];
static _Atomic int cur = -1;       /* index into maps, -1: none */
static _Atomic unsigned int ngen;  /* maps used so far */
static _Atomic int64_t next_check; /* ms */
static _Atomic uint32_t remap_lock;

static _Atomic bool rooted; /* chrooted: the path is out of reach */

static bool replaced(void);

/*
 * The table's file to map, open, with its stat in *st; -1 if there is
 * nothing new to map: the mapped file is current, the file cannot be had
 * now, or it is gone (*gone: then nothing is accelerated).
 */
static int open_table(struct stat *st, bool *gone)
{
	*gone = false;
	int c = atomic_load(&cur);
	if (atomic_load_explicit(&rooted, memory_order_relaxed)) {
		if (c >= 0 && !replaced())
			return -1;
		int fd = slim_table_fd();
		if (fd >= 0 && fstat(fd, st) != 0) {
			REAL(close)(fd);
			fd = -1;
		}
		return fd;
	}
	if (stat(slim_cfg.dir_path, st) != 0) {
		*gone = true;
		return -1;
	}
	if (c >= 0 && maps[c].dev == st->st_dev && maps[c].ino == st->st_ino)
		return -1;
	int fd = open(slim_cfg.dir_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EPERM))
		fd = slim_table_fd();
	return fd;
}

static void try_map(void)
{
	struct stat st;
	bool gone;
	int fd = open_table(&st, &gone);
	if (fd < 0) {
		if (gone)
			atomic_store(&cur, -1);
		return;
	}
	const uint8_t *p = NULL;
	if (fstat(fd, &st) == 0 && st.st_size >= SLIM_DIR_HDR) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED)
			p = m;
	}
	REAL(close)(fd);
	if (p == NULL) {
		atomic_store(&cur, -1);
		return;
	}
	uint32_t magic, version, cap;
	memcpy(&magic, p, 4);
	memcpy(&version, p + 4, 4);
	memcpy(&cap, p + 12, 4);
	if (magic != SLIM_DIR_MAGIC || version != SLIM_DIR_VERSION || cap == 0 || (cap & (cap - 1)) != 0 ||
	    (uint64_t)SLIM_DIR_HDR + (uint64_t)cap * SLIM_DIR_SLOT > (uint64_t)st.st_size) {
		slim_debug("slim: directory %s is not valid; nothing is accelerated",
			   slim_cfg.dir_path);
		munmap((void *)p, (size_t)st.st_size);
		atomic_store(&cur, -1);
		return;
	}
	unsigned int g = atomic_fetch_add(&ngen, 1);
	int i = (int)(g % MAPS);
	maps[i] = (struct dirmap){p, cap, st.st_dev, st.st_ino};
	atomic_store_explicit(&cur, i, memory_order_release);
	slim_debug("slim: directory %s mapped, %u slots", slim_cfg.dir_path, cap);
}

/*
 * The first lookups of a process may come from several threads at once:
 * those that find another thread mapping the table wait for it (a few
 * file syscalls, bounded), or their connections would miss and go over
 * the overlay.
 */
static void wait_for_mapping(void)
{
	int64_t deadline = slim_now_ms() + 100;
	while (atomic_load_explicit(&remap_lock, memory_order_acquire) != 0 &&
	       atomic_load_explicit(&cur, memory_order_acquire) < 0 && slim_now_ms() < deadline)
		sched_yield();
}

/* The router moved to a new, larger file: map it at this lookup. */
static bool replaced(void)
{
	int c = atomic_load_explicit(&cur, memory_order_acquire);
	return c >= 0 && __atomic_load_n((const uint32_t *)(maps[c].base + SLIM_DIR_REPLACED),
					 __ATOMIC_ACQUIRE) != 0;
}

static void refresh(void)
{
	int64_t now = slim_now_ms();
	uint32_t expect = 0;
	if ((now >= atomic_load_explicit(&next_check, memory_order_relaxed) || unlikely(replaced())) &&
	    atomic_compare_exchange_strong(&remap_lock, &expect, 1)) {
		atomic_store_explicit(&next_check, now + 1000, memory_order_relaxed);
		int saved = errno;
		try_map();
		errno = saved;
		atomic_store_explicit(&remap_lock, 0, memory_order_release);
		return;
	}
	if (unlikely(atomic_load_explicit(&cur, memory_order_acquire) < 0))
		wait_for_mapping();
}

void slim_dir_before_chroot(void)
{
	uint32_t expect = 0;
	if (!atomic_compare_exchange_strong(&remap_lock, &expect, 1))
		return; /* another thread is mapping it */
	int saved = errno;
	atomic_store_explicit(&next_check, slim_now_ms() + 1000, memory_order_relaxed);
	try_map();
	errno = saved;
	atomic_store_explicit(&remap_lock, 0, memory_order_release);
}

void slim_dir_after_chroot(void)
{
	atomic_store_explicit(&rooted, true, memory_order_relaxed);
}

static inline uint32_t ld32(const uint8_t *p)
{
	return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
}

static inline uint16_t ld16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
}

/*
 * A writer that holds the sequence odd is rewriting the table: a few
 * microseconds, unless the router's thread was preempted mid-copy (a busy
 * host: milliseconds). A reader spins a little, then yields the CPU until
 * the writer is done or WRITER_WAIT_MS passed: a reader that gave up at
 * once missed a listener the table has, and its connection went over the
 * overlay. A writer that died mid-update (its odd sequence seen stuck) is
 * not waited for again; the restarted router rewrites the table.
 */
#define WRITER_SPINS 1000
#define WRITER_WAIT_MS 100

static _Atomic uint32_t stuck_seq; /* an odd sequence that outlived WRITER_WAIT_MS */

/* Waits while the writer holds odd sequence s; false if it is stuck. */
static bool wait_for_writer(uint32_t s, int *spins, int64_t *deadline)
{
	if (s == atomic_load_explicit(&stuck_seq, memory_order_relaxed))
		return false;
	if (++*spins < WRITER_SPINS) {
		__builtin_ia32_pause();
		return true;
	}
	int64_t now = slim_now_ms();
	if (*deadline == 0)
		*deadline = now + WRITER_WAIT_MS;
	if (now >= *deadline) {
		atomic_store_explicit(&stuck_seq, s, memory_order_relaxed);
		slim_debug("slim: the directory's writer is stuck mid-update; treating it as empty");
		return false;
	}
	sched_yield();
	return true;
}

/*
 * The table's hash (docs/protocol.md §2): every bit of the result depends
 * on every bit of the address, so a host's containers, whose addresses
 * differ only in their last bytes, spread over the whole table.
 */
static inline uint32_t dir_hash(uint32_t ip, uint16_t port)
{
	uint32_t h = ip ^ (uint32_t)port * 0x9e3779b9u;
	h ^= h >> 16;
	h *= 0x7feb352du;
	h ^= h >> 15;
	h *= 0x846ca68bu;
	h ^= h >> 16;
	return h;
}

/*
 * Whether a slot (ip already matched) is port's listener and takes the
 * client: an IPv4 one unless the slot says IPv6 only, an IPv6 one (of the
 * IPv6 overlay address) if it says so. An IPv6-only slot holds its port
 * at offset 14 (0 at offset 4: older shims never match it).
 */
static inline bool slot_matches(const uint8_t *e, uint16_t port, bool v6)
{
	uint16_t flags = ld16(e + 6);
	if (likely(flags == 0))
		return ld16(e + 4) == port && !v6;
	if (ld16((flags & SLIM_DIR_F_NOIPV4) ? e + 14 : e + 4) != port)
		return false;
	return v6 ? (flags & SLIM_DIR_F_IPV6) != 0 : (flags & SLIM_DIR_F_NOIPV4) == 0;
}

/* Reads dst's slot; 1 (found), 0 or SLIM_DIR_PENDING, as slim_dir_lookup. */
static int probe(const uint8_t *base, uint32_t cap, uint32_t ip, uint16_t port, bool v6,
		 uint32_t *hip, uint16_t *hport)
{
	uint32_t mask = cap - 1;
	uint32_t slot = dir_hash(ip, port) & mask;
	*hip = 0;
	*hport = 0;
	for (uint32_t n = 0; n < cap; n++, slot = (slot + 1) & mask) {
		const uint8_t *e = base + SLIM_DIR_HDR + (size_t)slot * SLIM_DIR_SLOT;
		uint32_t eip = ld32(e);
		if (eip == 0)
			return 0;
		if (eip == ip && slot_matches(e, port, v6)) {
			*hip = ld32(e + 8);
			*hport = ld16(e + 12);
			return *hip == 0 ? 0 : *hport == 0 ? SLIM_DIR_PENDING : 1;
		}
	}
	return 0;
}

int slim_dir_lookup_fam(uint32_t ip, uint16_t port, bool v6, uint32_t *hip, uint16_t *hport)
{
	refresh();
	int c = atomic_load_explicit(&cur, memory_order_acquire);
	if (c < 0)
		return -1;
	const uint8_t *base = maps[c].base;
	const uint32_t *seqp = (const uint32_t *)(base + 8);
	int spins = 0;
	int64_t deadline = 0;
	for (;;) {
		uint32_t s1 = __atomic_load_n(seqp, __ATOMIC_ACQUIRE);
		if (s1 & 1) {
			if (wait_for_writer(s1, &spins, &deadline))
				continue;
			*hip = 0;
			*hport = 0;
			return 0;
		}
		uint32_t fip;
		uint16_t fport;
		int found = probe(base, maps[c].cap, ip, port, v6, &fip, &fport);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(seqp, __ATOMIC_RELAXED) != s1)
			continue;
		*hip = fip;
		*hport = fport;
		return found;
	}
}
