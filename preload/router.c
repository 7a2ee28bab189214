/*
 * The router client (docs/protocol.md §1) and the pool of host sockets.
 *
 * Each thread has its own SEQPACKET connection to the router (no lock
 * across a round trip), opened on first need and kept at a hidden fd. A
 * registry of those connections lets the fork child close them and lets
 * slim_hidden_evict move one. Every request has a deadline
 * (SLIM_ROUTER_TIMEOUT_MS, 500 ms by default). A connection the router
 * closed (it restarted, or dropped it while idle) is replaced once, at
 * once. Any other failure closes the thread's connection, prints the
 * once-per-process warning and makes the whole process leave the router
 * alone for a while (the back-off below), so a dead or stalled router costs
 * the app little more than the overlay.
 */
#include "shim.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_SLOTS 256
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define LEVEL_BITS 8
#define LEVEL_MASK ((1u << LEVEL_BITS) - 1)
#define LEVEL_MAX 6 /* 1 s << 5 = 32 s: the cap */

/* fd + 1 of each thread's router connection; 0: free. */
static _Atomic int slots[MAX_SLOTS];
static SLIM_TLS int tls_slot = -1;
static SLIM_TLS uint32_t tls_id;
/* Requests the thread is inside: more than one when a signal handler's
 * request interrupted another (it must not read the replies meant for the
 * interrupted one, so it gets a connection of its own). */
static SLIM_TLS int tls_busy;

/*
 * The back-off, one word for the whole process, changed without a lock
 * (the fork child resets it): (SINCE << LEVEL_BITS) | LEVEL. LEVEL 0: the
 * router answers (SINCE: when it answered again after failing, or 0).
 * LEVEL n > 0: the router failed at SINCE (ms, monotonic) and is left alone
 * until SINCE + pause, 1 s at level 1, doubling with each level up to 30 s.
 */
static _Atomic uint64_t backoff;

/* Closes a thread's router connection when the thread exits. */
static pthread_key_t thread_key;
static atomic_bool warned;

struct hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t id;
	uint32_t len;
};
_Static_assert(sizeof(struct hdr) == SLIM_HEADER_SIZE, "header size differs from router/protocol");

static int64_t pause_ms(unsigned int level)
{
	int64_t p = (int64_t)BACKOFF_MIN_MS << (level - 1);
	return p < BACKOFF_MAX_MS ? p : BACKOFF_MAX_MS;
}

static bool router_down(void)
{
	uint64_t b = atomic_load_explicit(&backoff, memory_order_relaxed);
	if (likely((b & LEVEL_MASK) == 0))
		return false;
	int64_t since = (int64_t)(b >> LEVEL_BITS);
	return slim_now_ms() < since + pause_ms(b & LEVEL_MASK);
}

/* The router answered: the failures are over (written only if they were). */
static void router_ok(void)
{
	if (unlikely((atomic_load_explicit(&backoff, memory_order_relaxed) & LEVEL_MASK) != 0))
		atomic_store_explicit(&backoff, (uint64_t)slim_now_ms() << LEVEL_BITS,
				      memory_order_relaxed);
}

void slim_warn_router(const char *why, int err)
{
	if (atomic_exchange_explicit(&warned, true, memory_order_relaxed))
		return;
	const char *name = slim_errname(err);
	if (name != NULL)
		slim_log("slim: router unreachable at %s (%s: %s); using the overlay",
			 slim_cfg.router_path, why, name);
	else
		slim_log("slim: router unreachable at %s (%s: errno %d); using the overlay",
			 slim_cfg.router_path, why, err);
}

/*
 * A request that began at started failed. A stall fails every thread that
 * was waiting on the router, but it is one failure: the pause grows once
 * per episode. A request that began before the back-off last changed
 * (a pause was set, or the router answered again) belongs to the episode
 * then under way and changes nothing. One that began later (no request
 * begins during a pause, so: after it ran out) found the router failing
 * again and sets the next, doubled pause. Of threads racing to do that,
 * the compare-and-swap lets one win; the others then see a pause set after
 * they began.
 */
static void router_failed(const char *why, int err, int64_t started)
{
	uint64_t old = atomic_load_explicit(&backoff, memory_order_relaxed);
	for (;;) {
		unsigned int level = old & LEVEL_MASK;
		if (started <= (int64_t)(old >> LEVEL_BITS))
			break; /* counted already, or older than the recovery */
		unsigned int next = level < LEVEL_MAX ? level + 1 : LEVEL_MAX;
		uint64_t b = (uint64_t)slim_now_ms() << LEVEL_BITS | next;
		if (atomic_compare_exchange_weak_explicit(&backoff, &old, b, memory_order_relaxed,
							  memory_order_relaxed)) {
			slim_debug("slim: leaving the router alone for %d ms", (int)pause_ms(next));
			break;
		}
	}
	slim_warn_router(why, err);
	slim_debug("slim: router %s: %s (errno %d)", why,
		   slim_errname(err) ? slim_errname(err) : "error", err);
}

static void close_conn(void)
{
	int s = tls_slot;
	if (s < 0)
		return;
	int v = atomic_exchange(&slots[s], 0);
	tls_slot = -1;
	if (v > 0)
		slim_hidden_close(v - 1);
}

/* Opens a connection to the router: a non-blocking SEQPACKET socket. */
static int open_conn(int *err)
{
	int s = REAL(socket)(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		*err = errno;
		return -1;
	}
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	memcpy(sun.sun_path, slim_cfg.router_path, sizeof sun.sun_path);
	/* Non-blocking: a full backlog is EAGAIN, not a hang. */
	if (REAL(connect)(s, (struct sockaddr *)&sun, sizeof sun) != 0) {
		*err = errno;
		REAL(close)(s);
		return -1;
	}
	int h = slim_hide(s, SLIM_H_ROUTER);
	if (h < 0)
		*err = EMFILE;
	return h;
}

/*
 * The calling thread's router connection, opened on demand; *reused says
 * whether it served an earlier request (the router may have closed it
 * since). A request made while the thread is inside another (a signal
 * handler's) gets a connection of its own.
 */
static int router_fd(int *err, bool *reused)
{
	*reused = false;
	bool nested = tls_busy > 1;
	int s = tls_slot;
	if (s >= 0 && !nested) {
		int v = atomic_load_explicit(&slots[s], memory_order_relaxed);
		if (v > 0) {
			*reused = true;
			return v - 1;
		}
		tls_slot = -1; /* evicted */
	}
	int fd = open_conn(err);
	if (fd < 0 || nested)
		return fd; /* per request */
	for (int i = 0; i < MAX_SLOTS; i++) {
		int expect = 0;
		if (atomic_compare_exchange_strong(&slots[i], &expect, fd + 1)) {
			tls_slot = i;
			slim_hidden_ref(fd, NULL, i);
			pthread_setspecific(thread_key, (void *)(intptr_t)(i + 1));
			return fd;
		}
	}
	/* More threads than slots: this one's connection is per request. */
	return fd;
}

static bool is_thread_conn(int fd)
{
	return tls_slot >= 0 && atomic_load_explicit(&slots[tls_slot], memory_order_relaxed) == fd + 1;
}

/* The request is over: a per-request connection is closed. */
static void done_with(int fd)
{
	if (!is_thread_conn(fd))
		slim_hidden_close(fd);
}

/* The connection failed: closed, whichever kind it is. */
static void drop_conn(int fd)
{
	if (is_thread_conn(fd))
		close_conn();
	else
		slim_hidden_close(fd);
}

/*
 * What a connection the router closed reports: it restarted, or dropped
 * the connection while idle. Not a router failure when the connection had
 * served before: a new one is tried at once.
 */
static bool conn_closed(int err)
{
	return err == EPIPE || err == ECONNRESET || err == ENOTCONN || err == ECONNREFUSED;
}

static void thread_exit(void *arg)
{
	(void)arg;
	int saved = errno;
	close_conn();
	errno = saved;
}

int slim_router_init(void)
{
	return pthread_key_create(&thread_key, thread_exit);
}

void slim_router_moved(int slot, int oldfd, int newfd)
{
	if (slot < 0 || slot >= MAX_SLOTS)
		return;
	int expect = oldfd + 1;
	atomic_compare_exchange_strong(&slots[slot], &expect, newfd < 0 ? 0 : newfd + 1);
}

void slim_router_atfork_child(void)
{
	for (int i = 0; i < MAX_SLOTS; i++) {
		int v = atomic_exchange(&slots[i], 0);
		if (v > 0)
			slim_hidden_close(v - 1);
	}
	tls_slot = -1;
	atomic_store(&backoff, 0);
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		REAL(close)(fds[i]);
}

static ssize_t send_msg(int s, uint16_t type, uint32_t id, const void *payload, uint32_t len,
			int fd_in)
{
	struct hdr h = {SLIM_MAGIC, SLIM_VERSION, type, id, len};
	struct iovec iov[2] = {{&h, sizeof h}, {(void *)payload, len}};
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
	if (fd_in >= 0) {
		memset(&cm, 0, sizeof cm);
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof cm.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd_in, sizeof(int));
	}
	ssize_t n;
	do
		n = REAL(sendmsg)(s, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Receives one datagram (up to the deadline) into rep; fds into rep->fds. */
static int recv_msg(int s, int64_t deadline, struct hdr *h, struct slim_reply *rep, int *err)
{
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(SLIM_POOL_CAP * sizeof(int))];
	} cm;
	for (;;) {
		int64_t left = deadline - slim_now_ms();
		if (left <= 0) {
			*err = ETIMEDOUT;
			return -1;
		}
		struct pollfd p = {s, POLLIN, 0};
		int r = REAL(poll)(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*err = errno;
			return -1;
		}
		if (r == 0)
			continue;

		struct iovec iov[2] = {{h, sizeof *h}, {rep->payload, sizeof rep->payload}};
		struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2,
				     .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
		ssize_t n = REAL(recvmsg)(s, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0) {
			*err = errno;
			return -1;
		}
		rep->nfds = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
				if (rep->nfds < SLIM_POOL_CAP)
					rep->fds[rep->nfds++] = fd;
				else
					REAL(close)(fd);
			}
		}
		if (n == 0) {
			*err = ECONNRESET;
			return -1;
		}
		if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof *h ||
		    h->magic != SLIM_MAGIC || h->version != SLIM_VERSION ||
		    h->len != (size_t)n - sizeof *h) {
			close_fds(rep->fds, rep->nfds);
			rep->nfds = 0;
			*err = EBADMSG;
			return -1;
		}
		rep->type = h->type;
		rep->len = h->len;
		return 0;
	}
}

/*
 * One request and its reply on connection s: 0 (the wanted reply), 1 (an
 * ERROR reply: *err is its errno) or -1 (no usable reply: *err, *why).
 */
static int exchange(int s, uint16_t type, const void *payload, uint32_t len, int fd_in,
		    uint16_t want, struct slim_reply *rep, int *err, const char **why)
{
	uint32_t id = ++tls_id;
	*why = "send";
	if (send_msg(s, type, id, payload, len, fd_in) < 0) {
		*err = errno;
		return -1;
	}
	int64_t deadline = slim_now_ms() + slim_cfg.timeout_ms;
	*why = "reply";
	for (;;) {
		struct hdr h;
		if (recv_msg(s, deadline, &h, rep, err) != 0)
			return -1;
		if (h.id == id && h.type == want)
			return 0;
		close_fds(rep->fds, rep->nfds);
		rep->nfds = 0;
		if (h.id != id)
			continue; /* a late reply to an earlier request or note */
		if (h.type != SLIM_T_ERROR) {
			*err = EBADMSG;
			return -1;
		}
		int32_t code = EPROTO;
		if (rep->len >= 4)
			memcpy(&code, rep->payload, 4);
		slim_debug("slim: router refused request type %u: errno %d", type, code);
		*err = code > 0 ? code : EPROTO;
		return 1;
	}
}

int slim_router_call(uint16_t type, const void *payload, uint32_t len, int fd_in, uint16_t want,
		     struct slim_reply *rep, int *err)
{
	int saved = errno;
	rep->nfds = 0;
	int64_t started = slim_now_ms();
	if (router_down()) {
		*err = EAGAIN;
		errno = saved;
		return -1;
	}
	tls_busy++;
	int r = -1;
	for (int tries = 0; tries < 2; tries++) {
		bool reused;
		const char *why = "connect";
		int s = router_fd(err, &reused);
		if (s >= 0)
			r = exchange(s, type, payload, len, fd_in, want, rep, err, &why);
		if (s >= 0 && r >= 0) {
			done_with(s);
			router_ok();
			break;
		}
		if (s >= 0)
			drop_conn(s);
		if (s < 0 || !reused || !conn_closed(*err)) {
			router_failed(why, *err, started);
			break;
		}
	}
	tls_busy--;
	errno = saved;
	return r == 0 ? 0 : -1;
}

bool slim_router_resting(void)
{
	return router_down();
}

/* Sends a note on the thread's connection, back-off or not. */
static bool send_note(uint16_t type, const void *payload, uint32_t len, int fd_in)
{
	int saved = errno;
	bool sent = false;
	tls_busy++;
	for (int tries = 0; tries < 2; tries++) {
		bool reused;
		int e = 0;
		int s = router_fd(&e, &reused);
		if (s < 0)
			break;
		/* EAGAIN (router busy) drops it; the router's sweep catches up. */
		sent = send_msg(s, type, ++tls_id, payload, len, fd_in) >= 0;
		if (sent || !reused || !conn_closed(errno)) {
			done_with(s);
			break;
		}
		drop_conn(s);
	}
	tls_busy--;
	errno = saved;
	return sent;
}

bool slim_router_note(uint16_t type, const void *payload, uint32_t len, int fd_in)
{
	if (router_down())
		return false;
	return send_note(type, payload, len, fd_in);
}

bool slim_router_note_now(uint16_t type, const void *payload, uint32_t len)
{
	return send_note(type, payload, len, -1);
}

bool slim_router_sync(int wait_ms)
{
	int saved = errno;
	int e = 0;
	bool answered = false, reused;
	tls_busy++;
	int s = router_fd(&e, &reused);
	if (s < 0) {
		tls_busy--;
		errno = saved;
		return false;
	}
	uint32_t id = ++tls_id;
	if (send_msg(s, SLIM_T_HELLO, id, NULL, 0, -1) >= 0) {
		int64_t deadline = slim_now_ms() + wait_ms;
		struct slim_reply rep;
		struct hdr h;
		while (!answered && recv_msg(s, deadline, &h, &rep, &e) == 0) {
			close_fds(rep.fds, rep.nfds);
			answered = h.id == id;
		}
	}
	if (answered)
		done_with(s);
	else
		drop_conn(s); /* a late reply must not be read as another's */
	tls_busy--;
	errno = saved;
	return answered;
}

/* Withdraws a listener and waits (up to the router timeout) for the OK. */
void slim_unlisten(int fd)
{
	struct slim_reply rep;
	int err;
	if (slim_router_call(SLIM_T_UNLISTEN, NULL, 0, fd, SLIM_T_OK, &rep, &err) == 0)
		close_fds(rep.fds, rep.nfds);
}

bool slim_reserve(int app_fd)
{
	struct slim_reply rep;
	int err;
	if (slim_router_call(SLIM_T_RESERVE, NULL, 0, app_fd, SLIM_T_OK, &rep, &err) != 0)
		return false; /* refused (an older router, a socket it does not take) */
	close_fds(rep.fds, rep.nfds);
	return true;
}

int slim_listen_request(int app_fd, int backlog, uint32_t *ip, uint16_t *port)
{
	uint32_t b = backlog < 0 ? 0 : (uint32_t)backlog;
	struct slim_reply rep;
	int err;
	if (slim_router_call(SLIM_T_LISTEN, &b, sizeof b, app_fd, SLIM_T_LISTEN_OK, &rep, &err) != 0)
		return -1;
	if (rep.nfds != 1 || rep.len < 12) {
		close_fds(rep.fds, rep.nfds);
		slim_warn_router("LISTEN reply", EBADMSG);
		return -1;
	}
	uint32_t hip;
	uint16_t hport;
	memcpy(ip, rep.payload, 4);
	memcpy(port, rep.payload + 4, 2);
	memcpy(&hport, rep.payload + 6, 2);
	memcpy(&hip, rep.payload + 8, 4);
	int h = slim_hide(rep.fds[0], SLIM_H_LISTENER);
	if (h < 0)
		return -1;
	/* accept on it must never block; connections get the app's flags. */
	int fl = REAL(fcntl)(h, F_GETFL);
	if (fl < 0 || REAL(fcntl)(h, F_SETFL, fl | O_NONBLOCK) != 0) {
		slim_unlisten(h);
		slim_hidden_close(h);
		return -1;
	}
	slim_debug("slim: fd %d: listener %A:%P has host %A:%P (hidden fd %d)", app_fd, *ip, *port,
		   hip, hport, h);
	return h;
}

bool slim_publish(int host, uint32_t ip, uint16_t port, uint16_t fams)
{
	uint8_t p[8] = {0};
	memcpy(p, &ip, 4);
	memcpy(p + 4, &port, 2);
	memcpy(p + 6, &fams, 2); /* little-endian, as the router reads it */
	struct slim_reply rep;
	int err;
	if (slim_router_call(SLIM_T_PUBLISH, p, sizeof p, host, SLIM_T_OK, &rep, &err) != 0)
		return false;
	close_fds(rep.fds, rep.nfds);
	return true;
}

/* ---- HELLO ------------------------------------------------------------------ */

static _Atomic int hello_state; /* 0 unknown, 1 known */
static struct slim_self self_info;

/*
 * The router refused HELLO with EPERM: this process's network namespace is
 * no container it serves. Said once, with the router's reason; HELLO is
 * asked again at most once a second (a container registered later, such
 * as by a CNI plugin that found the router down, is then served).
 */
#define HELLO_REFUSED_RETRY_MS 1000
static _Atomic int64_t hello_refused_until;
static _Atomic bool hello_refused_said;

static void hello_refused(const struct slim_reply *rep)
{
	atomic_store_explicit(&hello_refused_until, slim_now_ms() + HELLO_REFUSED_RETRY_MS,
			      memory_order_relaxed);
	if (atomic_exchange(&hello_refused_said, true))
		return;
	char why[320];
	size_t n = 0;
	if (rep->type == SLIM_T_ERROR && rep->len > 4) {
		for (uint32_t i = 4; i < rep->len && i < sizeof rep->payload && n < sizeof why - 1; i++) {
			uint8_t c = rep->payload[i];
			why[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
		}
	}
	why[n] = '\0';
	slim_log("slim: the router at %s does not accelerate this process: %s; using the overlay",
		 slim_cfg.router_path, n > 0 ? why : "its network namespace is not a registered container");
}

bool slim_hello(struct slim_self *self)
{
	if (likely(atomic_load_explicit(&hello_state, memory_order_acquire) == 1)) {
		*self = self_info;
		return true;
	}
	int64_t until = atomic_load_explicit(&hello_refused_until, memory_order_relaxed);
	if (until != 0 && slim_now_ms() < until)
		return false;
	struct slim_reply rep;
	int err;
	rep.type = 0;
	rep.len = 0;
	if (slim_router_call(SLIM_T_HELLO, NULL, 0, -1, SLIM_T_HELLO_OK, &rep, &err) != 0) {
		if (err == EPERM && rep.type == SLIM_T_ERROR)
			hello_refused(&rep);
		return false;
	}
	close_fds(rep.fds, rep.nfds);
	if (rep.len < 12 || rep.payload[8] > 32) {
		/* Not the reply the call took it for: a failure seen just now. */
		router_failed("HELLO", EBADMSG, INT64_MAX);
		return false;
	}
	struct slim_self s;
	memcpy(&s.ip, rep.payload, 4);
	memcpy(&s.net, rep.payload + 4, 4);
	unsigned int bits = rep.payload[8];
	s.mask = bits == 0 ? 0 : htonl(~0u << (32 - bits));
	s.net &= s.mask;
	s.secure = rep.len >= 10 && (rep.payload[9] & 1) != 0;
	s.ipv6 = rep.len >= 24 && (rep.payload[9] & 2) != 0;
	memset(s.v6pfx, 0, sizeof s.v6pfx);
	if (s.ipv6)
		memcpy(s.v6pfx, rep.payload + 12, sizeof s.v6pfx);
	self_info = s;
	atomic_store_explicit(&hello_state, 1, memory_order_release);
	slim_debug("slim: overlay address %A, network %A/%u", s.ip, s.net, bits);
	*self = s;
	return true;
}

/* ---- TABLE ------------------------------------------------------------------ */

int slim_table_fd(void)
{
	struct slim_reply rep;
	int err;
	if (slim_router_call(SLIM_T_TABLE, NULL, 0, -1, SLIM_T_TABLE_OK, &rep, &err) != 0)
		return -1;
	if (rep.nfds != 1) {
		close_fds(rep.fds, rep.nfds);
		return -1;
	}
	return rep.fds[0];
}

int slim_policy_errno(int err)
{
	struct slim_self s;
	if (err == EPERM && slim_hello(&s) && s.secure)
		return ECONNREFUSED;
	return err;
}

/* ---- pool ------------------------------------------------------------------ */

/*
 * Two pools: AF_INET host sockets, and AF_INET6 ones for the app's
 * AF_INET6 sockets that connect to v4-mapped addresses (POOL with the
 * family, docs/protocol.md §1).
 */
struct pool {
	_Atomic uint32_t lock;
	int n;
	int fds[SLIM_POOL_CAP];
	_Atomic unsigned int refills;
	_Atomic int64_t off_until; /* the router gives none: no requests until then */
};
static struct pool pools[2];

static void pool_lock(struct pool *p)
{
	uint32_t expect = 0;
	while (!atomic_compare_exchange_weak_explicit(&p->lock, &expect, 1, memory_order_acquire,
						      memory_order_relaxed)) {
		expect = 0;
		__builtin_ia32_pause();
	}
}

static void pool_unlock(struct pool *p)
{
	atomic_store_explicit(&p->lock, 0, memory_order_release);
}

static _Atomic bool perm_warned;
static _Atomic bool tfo_warned;

/* The POOL request failed with err: say so, and rest if it will fail again. */
static void pool_refused(struct pool *p, int err, bool v6)
{
	/*
	 * The router sets TCP_FASTOPEN_CONNECT on pool sockets
	 * (docs/protocol.md §1): connect() then only picks the port and the
	 * SYN leaves with the preamble, which names that port. EOPNOTSUPP:
	 * the host has client TFO off.
	 */
	if (err == EOPNOTSUPP) {
		if (!atomic_exchange(&tfo_warned, true))
			slim_log("slim: TCP Fast Open is off for clients on this host "
				 "(net.ipv4.tcp_fastopen); using the overlay");
		atomic_store_explicit(&p->off_until, slim_now_ms() + 60000, memory_order_relaxed);
	}
	if (err == EPERM) {
		if (!atomic_exchange(&perm_warned, true))
			slim_log("slim: the router gives this process no host sockets (EPERM: "
				 "not in a registered container, or, in secure mode, not "
				 "started with slim exec); using the overlay");
		atomic_store_explicit(&p->off_until, slim_now_ms() + 60000, memory_order_relaxed);
	}
	if (v6 && (err == EAFNOSUPPORT || err == EINVAL)) {
		/* No AF_INET6 host sockets here (secure mode, an older router). */
		atomic_store_explicit(&p->off_until, slim_now_ms() + 60000, memory_order_relaxed);
	}
	slim_debug("slim: no %s host sockets from the router (errno %d); using the overlay",
		   v6 ? "AF_INET6" : "AF_INET", err);
}

int slim_pool_get(bool v6)
{
	struct pool *p = &pools[v6 ? 1 : 0];
	int64_t off = atomic_load_explicit(&p->off_until, memory_order_relaxed);
	if (unlikely(off != 0) && slim_now_ms() < off)
		return -1;
	pool_lock(p);
	if (p->n > 0) {
		int fd = p->fds[--p->n];
		pool_unlock(p);
		return fd;
	}
	pool_unlock(p);

	/*
	 * Batches grow 4, 8, 16, 32: a short-lived process (curl) takes a few
	 * host sockets, a busy one a round trip per 32 connects.
	 */
	unsigned int k = atomic_fetch_add_explicit(&p->refills, 1, memory_order_relaxed);
	/* u32 count, then u32 family (AF_INET6 only: the 4-byte form is AF_INET). */
	uint32_t req[2] = {k >= 3 ? SLIM_POOL_BATCH : SLIM_POOL_BATCH >> (3 - k), AF_INET6};
	struct slim_reply rep;
	int err;
	if (slim_router_call(SLIM_T_POOL, req, v6 ? sizeof req : sizeof req[0], -1, SLIM_T_POOL_OK,
			     &rep, &err) != 0) {
		pool_refused(p, err, v6);
		return -1;
	}
	int mine = -1;
	int keep[SLIM_POOL_CAP];
	int nkeep = 0;
	int n = slim_hide_many(rep.fds, rep.nfds, SLIM_H_POOL);
	for (int i = 0; i < n; i++) {
		if (mine < 0)
			mine = rep.fds[i];
		else
			keep[nkeep++] = rep.fds[i];
	}
	pool_lock(p);
	int i = 0;
	while (i < nkeep && p->n < SLIM_POOL_CAP)
		p->fds[p->n++] = keep[i++];
	pool_unlock(p);
	for (; i < nkeep; i++)
		slim_hidden_close(keep[i]);
	slim_debug("slim: pool refilled with %d host sockets", rep.nfds);
	return mine;
}

void slim_pool_moved(int oldfd, int newfd)
{
	for (int k = 0; k < 2; k++) {
		struct pool *p = &pools[k];
		pool_lock(p);
		for (int i = 0; i < p->n; i++) {
			if (p->fds[i] != oldfd)
				continue;
			if (newfd >= 0)
				p->fds[i] = newfd;
			else
				p->fds[i] = p->fds[--p->n];
			break;
		}
		pool_unlock(p);
	}
}

void slim_pool_atfork_child(void)
{
	for (int k = 0; k < 2; k++) {
		struct pool *p = &pools[k];
		atomic_store(&p->lock, 0);
		for (int i = 0; i < p->n; i++)
			slim_hidden_close(p->fds[i]);
		p->n = 0;
	}
}
