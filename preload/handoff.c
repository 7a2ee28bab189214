/*
 * Connections passed to another process over a unix socket (SCM_RIGHTS):
 * docs/datapath.md "A connection passed to another process", the name
 * book's layout in docs/protocol.md §6.
 *
 * An accelerated connection is a host socket, whose kernel names are host
 * addresses; the shim answers getsockname, getpeername and accept with the
 * overlay ones it knows (an accepted connection's from its preamble). A
 * process that receives the socket knows nothing of them. So the sender's
 * sendmsg writes them, under the socket's cookie, in the container's name
 * book (a sealed memfd the router gives every process of the container,
 * mapped read-write), and the receiver's recvmsg reads them there by the
 * cookie of the socket it got, when its local address is no overlay
 * address, and records them as for a connection it made. No router
 * message per connection. Secure mode's kernel programs name host sockets
 * themselves: its router gives no book.
 *
 * Slots are written under a sequence word (odd while written), taken with
 * a compare-and-swap by any process of the container; a reader takes no
 * lock and retries nothing: a slot being written is no answer.
 */
#include "shim.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Static_assert(SLIM_FORM_V4 == SLIM_NAMES_V4 && SLIM_FORM_MAPPED == SLIM_NAMES_MAPPED &&
		       SLIM_FORM_OV6 == SLIM_NAMES_OV6,
	       "the shim's name forms differ from router/namebook's");

/* ---- the book ------------------------------------------------------------------- */

static _Atomic(uint8_t *) book;
static _Atomic uint32_t book_slots; /* stored before book is published */
static _Atomic int64_t book_off_until; /* no book from the router: not asked again until then */

#define BOOK_RETRY_MS 10000

static inline _Atomic uint32_t *slot_word(uint8_t *b, uint32_t slot, int off)
{
	return (_Atomic uint32_t *)(b + SLIM_BOOK_HDR + (size_t)slot * SLIM_BOOK_SLOT + off);
}

static inline _Atomic uint64_t *slot_cookie(uint8_t *b, uint32_t slot)
{
	return (_Atomic uint64_t *)(b + SLIM_BOOK_HDR + (size_t)slot * SLIM_BOOK_SLOT +
				    SLIM_BOOK_OFF_COOKIE);
}

/* The first slot of cookie's bucket (router/namebook's Bucket). */
static uint32_t bucket(uint64_t cookie, uint32_t slots)
{
	uint64_t h = cookie;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return ((uint32_t)h & (slots / SLIM_BOOK_WAYS - 1)) * SLIM_BOOK_WAYS;
}

/* Maps the book at fd if its header and size agree; NULL otherwise. */
static uint8_t *map_book(int fd, uint32_t *slots)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < SLIM_BOOK_HDR || st.st_size > (64 << 20))
		return NULL;
	uint8_t *b = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (b == MAP_FAILED)
		return NULL;
	uint32_t h[4];
	memcpy(h, b, sizeof h);
	uint32_t n = h[SLIM_BOOK_OFF_SLOTS / 4];
	if (h[0] != SLIM_BOOK_MAGIC || h[1] != SLIM_BOOK_VERSION ||
	    h[SLIM_BOOK_OFF_WAYS / 4] != SLIM_BOOK_WAYS || n < SLIM_BOOK_WAYS || (n & (n - 1)) != 0 ||
	    st.st_size != (off_t)SLIM_BOOK_HDR + (off_t)n * SLIM_BOOK_SLOT) {
		munmap(b, (size_t)st.st_size);
		return NULL;
	}
	*slots = n;
	return b;
}

/*
 * The container's book, asked of the router at first need (NAMEBOOK) and
 * kept for the process's life (a fork child shares the mapping); NULL
 * without one (secure mode, an older router: asked again 10 s later).
 */
static uint8_t *the_book(void)
{
	uint8_t *b = atomic_load_explicit(&book, memory_order_acquire);
	if (likely(b != NULL))
		return b;
	int64_t off = atomic_load_explicit(&book_off_until, memory_order_relaxed);
	if (off != 0 && slim_now_ms() < off)
		return NULL;
	struct slim_reply rep;
	int err;
	uint32_t slots = 0;
	if (slim_router_call(SLIM_T_NAMEBOOK, NULL, 0, -1, SLIM_T_NAMEBOOK_OK, &rep, &err) == 0 &&
	    rep.nfds == 1)
		b = map_book(rep.fds[0], &slots);
	for (int i = 0; i < rep.nfds; i++)
		REAL(close)(rep.fds[i]);
	if (b == NULL) {
		atomic_store_explicit(&book_off_until, slim_now_ms() + BOOK_RETRY_MS,
				      memory_order_relaxed);
		slim_debug("slim: no name book from the router: passed connections keep host names");
		return NULL;
	}
	uint8_t *expect = NULL;
	atomic_store_explicit(&book_slots, slots, memory_order_relaxed); /* the same in every racer */
	if (!atomic_compare_exchange_strong_explicit(&book, &expect, b, memory_order_acq_rel,
						     memory_order_acquire)) {
		munmap(b, (size_t)SLIM_BOOK_HDR + (size_t)slots * SLIM_BOOK_SLOT);
		return expect;
	}
	return b;
}

/* CLOCK_MONOTONIC in ms (slim_now_ms), low 32 bits: the stamps' clock in
 * every process, the supervisor's too (namebook.NowMS). */
static uint32_t stamp_now(void)
{
	return (uint32_t)slim_now_ms();
}

/*
 * Takes slot for writing: its sequence from even to odd. Returns the odd
 * sequence held, or 0: the slot is another writer's, and stays so if that
 * writer died in the middle (a few hundred ns); no one takes it over, as
 * a writer that was only stopped would write on, mixing its names with
 * the new writer's.
 */
static uint32_t lock_slot(uint8_t *b, uint32_t slot)
{
	_Atomic uint32_t *seq = slot_word(b, slot, SLIM_BOOK_OFF_SEQ);
	uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);
	if ((s & 1) || !atomic_compare_exchange_strong_explicit(seq, &s, s + 1, memory_order_acq_rel,
								memory_order_relaxed))
		return 0;
	atomic_thread_fence(memory_order_release); /* the odd value before the data */
	return s + 1;
}

/* Orders a bucket's slots for a write: cookie's own entry, then oldest. */
static void write_order(uint8_t *b, uint32_t first, uint64_t cookie, uint32_t out[SLIM_BOOK_WAYS])
{
	uint64_t key[SLIM_BOOK_WAYS];
	for (uint32_t i = 0; i < SLIM_BOOK_WAYS; i++) {
		uint32_t s = first + i;
		bool mine = atomic_load_explicit(slot_cookie(b, s), memory_order_relaxed) == cookie;
		uint32_t st = atomic_load_explicit(slot_word(b, s, SLIM_BOOK_OFF_STAMP),
						   memory_order_relaxed);
		key[i] = mine ? 0 : ((uint64_t)1 << 32) | st;
		out[i] = s;
	}
	for (uint32_t i = 1; i < SLIM_BOOK_WAYS; i++) /* insertion sort of 4 */
		for (uint32_t j = i; j > 0 && key[j] < key[j - 1]; j--) {
			uint64_t k = key[j];
			key[j] = key[j - 1];
			key[j - 1] = k;
			uint32_t s = out[j];
			out[j] = out[j - 1];
			out[j - 1] = s;
		}
}

static bool book_put(uint64_t cookie, const uint8_t names[SLIM_NAMES_LEN])
{
	uint8_t *b = the_book();
	if (b == NULL || cookie == 0)
		return false;
	uint32_t now = stamp_now();
	uint32_t order[SLIM_BOOK_WAYS];
	write_order(b, bucket(cookie, atomic_load_explicit(&book_slots, memory_order_relaxed)), cookie,
		    order);
	for (uint32_t i = 0; i < SLIM_BOOK_WAYS; i++) {
		uint32_t slot = order[i];
		uint32_t seq = lock_slot(b, slot);
		if (seq == 0)
			continue;
		atomic_store_explicit(slot_word(b, slot, SLIM_BOOK_OFF_STAMP), now, memory_order_relaxed);
		atomic_store_explicit(slot_cookie(b, slot), cookie, memory_order_relaxed);
		for (int k = 0; k < SLIM_NAMES_LEN; k += 4) {
			uint32_t w;
			memcpy(&w, names + k, 4);
			atomic_store_explicit(slot_word(b, slot, SLIM_BOOK_OFF_NAMES + k), w,
					      memory_order_relaxed);
		}
		atomic_store_explicit(slot_word(b, slot, SLIM_BOOK_OFF_SEQ), seq + 1,
				      memory_order_release);
		return true;
	}
	return false;
}

static bool book_get(uint64_t cookie, uint8_t names[SLIM_NAMES_LEN])
{
	uint8_t *b = the_book();
	if (b == NULL || cookie == 0)
		return false;
	uint32_t first = bucket(cookie, atomic_load_explicit(&book_slots, memory_order_relaxed));
	for (uint32_t slot = first; slot < first + SLIM_BOOK_WAYS; slot++) {
		_Atomic uint32_t *seq = slot_word(b, slot, SLIM_BOOK_OFF_SEQ);
		uint32_t before = atomic_load_explicit(seq, memory_order_acquire);
		if ((before & 1) ||
		    atomic_load_explicit(slot_cookie(b, slot), memory_order_relaxed) != cookie)
			continue;
		for (int k = 0; k < SLIM_NAMES_LEN; k += 4) {
			uint32_t w = atomic_load_explicit(slot_word(b, slot, SLIM_BOOK_OFF_NAMES + k),
							  memory_order_relaxed);
			memcpy(names + k, &w, 4);
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(seq, memory_order_relaxed) == before)
			return true;
	}
	return false;
}

/* ---- names ------------------------------------------------------------------------- */

static void names_encode(uint8_t p[SLIM_NAMES_LEN], const struct slim_conn *c)
{
	memset(p, 0, SLIM_NAMES_LEN);
	memcpy(p, &c->lip, 4);
	memcpy(p + 4, &c->lport, 2);
	memcpy(p + 6, &c->pport, 2);
	memcpy(p + 8, &c->pip, 4);
	p[12] = c->v6;
}

static bool names_decode(const uint8_t p[SLIM_NAMES_LEN], struct slim_conn *c)
{
	if (p[12] > SLIM_NAMES_OV6 || p[13] || p[14] || p[15])
		return false;
	memcpy(&c->lip, p, 4);
	memcpy(&c->lport, p + 4, 2);
	memcpy(&c->pport, p + 6, 2);
	memcpy(&c->pip, p + 8, 4);
	c->v6 = p[12];
	return true;
}

static uint64_t cookie_of(int fd)
{
	uint64_t c = 0;
	socklen_t len = sizeof c;
	return getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) == 0 ? c : 0;
}

/* ---- sending and receiving ------------------------------------------------------------- */

void slim_handoff(int fd)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL || atomic_load_explicit(&e->kind, memory_order_relaxed) != SLIM_CONN)
		return;
	struct slim_conn c;
	slim_lock(fd);
	c = e->u.c;
	bool conn = atomic_load_explicit(&e->kind, memory_order_relaxed) == SLIM_CONN;
	slim_unlock(fd);
	struct slim_self self;
	if (!conn || !slim_hello(&self) || self.secure)
		return;
	uint8_t p[SLIM_NAMES_LEN];
	names_encode(p, &c);
	if (book_put(cookie_of(fd), p))
		slim_debug("slim: fd %d: handed off as %A:%P - %A:%P", fd, c.lip, c.lport, c.pip,
			   c.pport);
	else
		slim_debug("slim: fd %d: not in the name book: the receiver sees host addresses", fd);
}

/*
 * Whether a received connection's local address is a host's: not an
 * overlay address of this container, not loopback, not unspecified.
 */
static bool host_local(int fd, const struct slim_self *self)
{
	struct slim_inaddr a;
	a.len = sizeof a.u;
	uint32_t ip;
	uint16_t port;
	if (REAL(getsockname)(fd, &a.u.sa, &a.len) != 0 || !slim_inaddr_v4(&a.u.sa, a.len, &ip, &port))
		return false; /* an IPv6 address: a host socket carries IPv4 */
	return ip != htonl(INADDR_ANY) && (ntohl(ip) >> 24) != 127 && (ip & self->mask) != self->net;
}

/*
 * What the book says must fit what this process knows: its own overlay
 * address as the local one, a peer of the overlay, the socket's family.
 */
static bool names_fit(const struct slim_conn *c, const struct slim_self *self, int domain)
{
	if (c->lip != self->ip || (c->pip & self->mask) != self->net || c->pport == 0)
		return false;
	if (domain == AF_INET)
		return c->v6 == SLIM_FORM_V4;
	return c->v6 == SLIM_FORM_MAPPED || (c->v6 == SLIM_FORM_OV6 && self->ipv6);
}

void slim_handoff_received(int fd, int domain)
{
	struct slim_self self;
	if (!slim_hello(&self) || self.secure || !host_local(fd, &self))
		return;
	uint8_t p[SLIM_NAMES_LEN];
	struct slim_conn c;
	if (!book_get(cookie_of(fd), p) || !names_decode(p, &c) || !names_fit(&c, &self, domain)) {
		slim_debug("slim: fd %d: a received host connection the name book has no names "
			   "for: its names are the host's",
			   fd);
		return;
	}
	slim_set_conn(fd, &c);
	slim_debug("slim: fd %d: received connection %A:%P - %A:%P", fd, c.lip, c.lport, c.pip,
		   c.pport);
}
