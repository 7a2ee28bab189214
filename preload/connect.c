/*
 * The client side: socket, bind, setsockopt, connect, and the overlay view
 * (getsockname, getpeername) of accelerated sockets.
 *
 * connect() on an AF_INET stream socket the app created with socket() and
 * did not bind (or bound to port 0 on 0.0.0.0 or its own overlay address),
 * to an overlay address the directory knows, swaps a host socket from the
 * pool in under the app's fd and sends the 20-byte preamble in the SYN
 * (docs/datapath.md "Connect"). There is no router round trip on this path
 * (except a pool refill every 32 connects), and no note to the router.
 *
 * The router sets TCP_FASTOPEN_CONNECT on pool sockets, so connect() to
 * the host listener only picks the local port and returns 0 at once; the
 * first send() carries the preamble, which names that port, in the SYN.
 * When the app bound its socket the port is known beforehand, and one
 * sendto(MSG_FASTOPEN) does both (no connect, no getsockname). The send
 * is always MSG_DONTWAIT; a blocking app's connect then waits in a second
 * connect() on the host socket, so the result is the kernel's own
 * (ECONNREFUSED …), SO_SNDTIMEO and signals act as on any blocking connect
 * (EINTR, connection continues), and a later connect() says EISCONN. A
 * non-blocking app gets EINPROGRESS, also when the handshake happened to
 * complete already (always a valid answer); the kernel then answers a
 * second connect() with EALREADY while the handshake runs, with 0 once
 * it is done, and with EISCONN after that, as for any socket.
 */
#include "shim.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

SLIM_EXPORT int socket(int domain, int type, int protocol)
{
	int fd = REAL(socket)(domain, type, protocol);
	if (fd < 0 || slim_ent(fd) == NULL)
		return fd;
	int saved = errno;
	if ((domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_STREAM &&
	    (protocol == 0 || protocol == IPPROTO_TCP)) {
		slim_set_kind(fd, SLIM_CAND);
		slim_cand_cloexec(fd, (type & SOCK_CLOEXEC) != 0);
		if (domain == AF_INET6) {
			struct slim_fd *e = slim_ent(fd);
			slim_lock(fd);
			e->flags |= SLIM_F_INET6;
			slim_unlock(fd);
		}
	} else
		slim_set_kind(fd, SLIM_NONE);
	errno = saved;
	return fd;
}

void slim_cand_cloexec(int fd, int on)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL || atomic_load_explicit(&e->kind, memory_order_relaxed) != SLIM_CAND)
		return;
	slim_lock(fd);
	if (atomic_load_explicit(&e->kind, memory_order_relaxed) == SLIM_CAND)
		e->flags = (uint8_t)((e->flags & ~SLIM_F_CLOEXEC) | SLIM_F_FD_KNOWN |
				     (on ? SLIM_F_CLOEXEC : 0));
	slim_unlock(fd);
}

/*
 * Binding to 0.0.0.0 or to the container's own overlay address, on port 0
 * (iperf3 -B, clients that choose their source address) or on an explicit
 * port (netperf's TCP_CRR cycles through client ports), keeps a socket a
 * candidate. The host socket binds the same port the app's socket holds
 * (getsockname reports the overlay address and that port, before and after
 * connect), with the app's SO_REUSEADDR/SO_REUSEPORT replayed first; if the
 * host namespace has the port in use, the socket stays on the overlay.
 * Whether an address is our own is only known after HELLO, so it is checked
 * at connect. Any other address is left alone: the socket stays on the
 * overlay.
 */
static void record_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct slim_fd *e = slim_ent(fd);
	int family = (e->flags & SLIM_F_INET6) ? AF_INET6 : AF_INET;
	uint32_t ip;
	uint16_t port;
	/* An AF_INET6 socket: ::, a v4-mapped address or an IPv6 overlay one (its
	 * IPv4 twin); another IPv6 address: left alone. */
	bool inet = sa != NULL && sa->sa_family == family && slim_inaddr_v4_or_ov6(sa, len, &ip, &port);
	slim_lock(fd);
	if (!inet) {
		e->flags |= SLIM_F_BOUND;
	} else {
		e->flags |= SLIM_F_BOUND0;
		if (ip != htonl(INADDR_ANY)) {
			e->flags |= SLIM_F_BOUND_IP;
			e->u.b.ip = ip;
		}
		if (port != 0) {
			e->flags |= SLIM_F_BOUND_PORT;
			e->u.b.port = port;
		}
	}
	slim_unlock(fd);
}

SLIM_EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	int r = REAL(bind)(fd, addr.__sockaddr__, len);
	if (r == 0 && slim_kind_of(fd) == SLIM_CAND) {
		int saved = errno;
		record_bind(fd, addr.__sockaddr__, len);
		errno = saved;
	}
	return r;
}

/* Options whose value cannot be replayed on a host socket. */
static bool opt_unreplayable(int level, int name)
{
	if (level != SOL_SOCKET)
		return false;
	switch (name) {
	case SO_BINDTODEVICE: /* a container interface name */
	case SO_ATTACH_FILTER:
	case SO_ATTACH_BPF:
	case SO_ATTACH_REUSEPORT_CBPF:
	case SO_ATTACH_REUSEPORT_EBPF:
		return true;
	}
	return false;
}

SLIM_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	int r = REAL(setsockopt)(fd, level, name, val, len);
	if (r != 0 || slim_kind_of(fd) != SLIM_CAND)
		return r;
	struct slim_fd *e = slim_ent(fd);
	slim_lock(fd);
	if (!(e->flags & SLIM_F_NOACCEL)) {
		struct slim_ext *x = slim_ext_get(e, true);
		if (x == NULL || len > SLIM_OPT_MAX_LEN || (len > 0 && val == NULL) ||
		    opt_unreplayable(level, name)) {
			e->flags |= SLIM_F_NOACCEL;
		} else {
			int i;
			for (i = 0; i < x->nopts; i++)
				if (x->opts[i].level == level && x->opts[i].name == name)
					break;
			if (i == x->nopts) {
				if (x->nopts == SLIM_MAX_OPTS)
					e->flags |= SLIM_F_NOACCEL;
				else
					x->nopts++;
			}
			if (!(e->flags & SLIM_F_NOACCEL)) {
				x->opts[i].level = level;
				x->opts[i].name = name;
				x->opts[i].len = len;
				if (len > 0)
					memcpy(x->opts[i].val, val, len);
			}
		}
	}
	slim_unlock(fd);
	return r;
}

void slim_preamble_build(uint8_t out[SLIM_PREAMBLE_LEN], uint32_t cip, uint16_t cport,
			 uint32_t sip, uint16_t sport)
{
	uint32_t magic = SLIM_PREAMBLE_MAGIC;
	memcpy(out, &magic, 4);
	out[4] = SLIM_PREAMBLE_VERSION;
	out[5] = 0;
	out[6] = out[7] = 0;
	memcpy(out + 8, &cip, 4);
	memcpy(out + 12, &cport, 2);
	memcpy(out + 14, &sip, 4);
	memcpy(out + 18, &sport, 2);
}

bool slim_preamble_parse(const uint8_t in[SLIM_PREAMBLE_LEN], uint32_t *cip, uint16_t *cport,
			 uint32_t *sip, uint16_t *sport)
{
	uint32_t magic;
	memcpy(&magic, in, 4);
	if (magic != SLIM_PREAMBLE_MAGIC || in[4] != SLIM_PREAMBLE_VERSION ||
	    (in[5] & ~SLIM_PREAMBLE_F_IPV6) != 0 || in[6] != 0 || in[7] != 0)
		return false;
	memcpy(cip, in + 8, 4);
	memcpy(cport, in + 12, 2);
	memcpy(sip, in + 14, 4);
	memcpy(sport, in + 18, 2);
	return *cip != 0 && *cport != 0 && *sip != 0 && *sport != 0;
}

void slim_fill_addr(struct sockaddr *addr, socklen_t *len, uint32_t ip, uint16_t port, int form)
{
	if (addr == NULL || len == NULL)
		return;
	struct slim_inaddr a;
	slim_inaddr_form(&a, ip, port, form);
	size_t n = *len < a.len ? *len : a.len;
	memcpy(addr, &a.u, n);
	*len = a.len;
}

/*
 * A non-blocking wait for a connecting socket (bounded by timeout_ms);
 * 0 connected, else an errno (EINTR, EINPROGRESS, the kernel's SO_ERROR).
 */
static int wait_connected(int fd, int timeout_ms)
{
	struct pollfd p = {fd, POLLOUT, 0};
	int r = REAL(poll)(&p, 1, timeout_ms);
	if (r < 0)
		return errno;
	if (r == 0)
		return EINPROGRESS;
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return errno;
	return err;
}

/*
 * A blocking app's wait: the kernel's own connect on the host socket, so
 * SO_SNDTIMEO, signals and SA_RESTART behave as for any blocking connect,
 * and the socket ends up connected in the kernel's eyes (a further
 * connect() says EISCONN, not 0). 0 or an errno; EINPROGRESS when
 * SO_SNDTIMEO expired (the kernel says EALREADY on this second call).
 */
static int wait_connected_blocking(int fd, const struct slim_inaddr *host)
{
	if (REAL(connect)(fd, &host->u.sa, host->len) == 0)
		return 0;
	int err = errno;
	if (err == EALREADY)
		return EINPROGRESS;
	return err == EISCONN ? 0 : err;
}

#define PASS 1 /* not accelerated: the real connect */

static void epoll_restore(int fd, const struct slim_ext *x, const bool *deleted)
{
	for (int i = 0; x != NULL && i < x->nregs; i++) {
		if (!deleted[i])
			continue;
		struct epoll_event ev = {.events = x->regs[i].events};
		ev.data.u64 = x->regs[i].data;
		REAL(epoll_ctl)(x->regs[i].epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}

/* What a candidate recorded, copied out under its lock. */
struct cand {
	int flags;
	uint32_t bound_ip;
	uint16_t bound_port;
	bool has_ext;
	struct slim_ext x;
};

/*
 * Back to a candidate after a failed attempt, so a retry is accelerated;
 * what it recorded of its bind comes back too (u held the connection).
 */
static void back_to_cand(int fd, const struct cand *c)
{
	struct slim_fd *e = slim_ent(fd);
	slim_lock(fd);
	if (atomic_load_explicit(&e->kind, memory_order_relaxed) == SLIM_CONN) {
		memset(&e->u, 0, sizeof e->u);
		e->u.b.ip = c->bound_ip;
		e->u.b.port = c->bound_port;
		atomic_store_explicit(&e->kind, SLIM_CAND, memory_order_relaxed);
	}
	slim_unlock(fd);
}

static void snapshot_cand(int fd, struct cand *c)
{
	struct slim_fd *e = slim_ent(fd);
	slim_lock(fd);
	c->flags = e->flags;
	c->bound_ip = e->u.b.ip;
	c->bound_port = e->u.b.port;
	struct slim_ext *xp = slim_ext_get(e, false);
	c->has_ext = xp != NULL;
	if (xp != NULL) {
		c->x.nregs = xp->nregs;
		c->x.nopts = xp->nopts;
		memcpy(c->x.regs, xp->regs, c->x.nregs * sizeof c->x.regs[0]);
		memcpy(c->x.opts, xp->opts, c->x.nopts * sizeof c->x.opts[0]);
	}
	slim_unlock(fd);
}

/* Can this candidate reach dst over a host socket? Fills self. */
static bool accelerable(const struct cand *c, const struct sockaddr_in *dst,
			struct slim_self *self, int *fallback)
{
	uint32_t dip = dst->sin_addr.s_addr;
	*fallback = -1; /* not a fallback: not an overlay destination */
	if (dst->sin_port == 0 || dip == 0)
		return false;
	if (!slim_hello(self)) {
		*fallback = SLIM_FB_ROUTER;
		return false;
	}
	if ((dip & self->mask) != self->net)
		return false;
	if (c->flags & SLIM_F_NOACCEL) {
		/* too many options or epoll sets, or a dup'd unconnected socket */
		*fallback = SLIM_FB_OTHER;
		return false;
	}
	if ((c->flags & SLIM_F_BOUND) || ((c->flags & SLIM_F_BOUND_IP) && c->bound_ip != self->ip)) {
		*fallback = SLIM_FB_BOUND;
		return false;
	}
	return true;
}

/*
 * An AF_INET6 socket connecting to a v4-mapped overlay address (or, ov6,
 * to an IPv6 overlay one): not IPV6_V6ONLY to a v4-mapped address (the
 * kernel refuses the connect: ENETUNREACH), nor bound to an address of
 * the other family. false: left alone (said once, counted, but for the
 * kernel's refusals). Secure mode guards AF_INET6 host sockets as AF_INET
 * ones (docs/secure.md); it leaves IPv6 overlay addresses to the overlay
 * before this (slim_ov6_dest).
 */
static bool inet6_accelerable(int fd, bool ov6, bool bound_ip)
{
	if (bound_ip && slim_bound_other_family(fd, ov6))
		return false; /* the kernel refuses it */
	if (!ov6 && slim_v6only(fd)) {
		slim_v6_left_alone(fd, SLIM_V6_ONLY);
		return false;
	}
	return true;
}

/* Counts a fallback (if it is one) and tells connect() to use the overlay. */
static int fall_back(int reason)
{
	if (reason >= 0)
		slim_stats_fallback(reason);
	return PASS;
}

/*
 * A pool socket dressed like the app's socket: its recorded options and
 * O_NONBLOCK. Returns it (still hidden) or -1; *fl and *fdfl get the app
 * fd's file status and descriptor flags.
 */
static int host_socket_for(int fd, const struct cand *c, const struct slim_ext *xr, int *fl,
			   int *fdfl, int *fallback)
{
	*fallback = SLIM_FB_POOL;
	int ps = slim_pool_get((c->flags & SLIM_F_INET6) != 0);
	if (ps < 0)
		return -1;
	*fallback = SLIM_FB_OPTION;
	for (int i = 0; xr != NULL && i < xr->nopts; i++) {
		const struct slim_opt *o = &xr->opts[i];
		if (slim_opt_host_skips(o))
			continue;
		if (REAL(setsockopt)(ps, o->level, o->name, o->val, o->len) != 0) {
			slim_debug("slim: fd %d: option %d/%d does not apply to a host socket",
				   fd, o->level, o->name);
			slim_hidden_close(ps);
			return -1;
		}
	}
	*fallback = SLIM_FB_OTHER;
	*fl = REAL(fcntl)(fd, F_GETFL);
	if (c->flags & SLIM_F_FD_KNOWN)
		*fdfl = (c->flags & SLIM_F_CLOEXEC) ? FD_CLOEXEC : 0;
	else
		*fdfl = REAL(fcntl)(fd, F_GETFD);
	if (*fl < 0 || *fdfl < 0 ||
	    ((*fl & O_NONBLOCK) && REAL(fcntl)(ps, F_SETFL, O_NONBLOCK) != 0)) {
		slim_hidden_close(ps);
		return -1;
	}
	return ps;
}

/*
 * A bound app socket's port (the one bind() named, else the kernel's
 * choice), taken by the host socket too; false if in use. *port gets it.
 */
static bool bind_like_app(int fd, int ps, const struct cand *c, uint16_t *port)
{
	bool v6 = (c->flags & SLIM_F_INET6) != 0;
	uint16_t p;
	if (c->flags & SLIM_F_BOUND_PORT) {
		p = c->bound_port;
	} else {
		struct slim_inaddr app;
		uint32_t ip;
		app.len = sizeof app.u;
		if (REAL(getsockname)(fd, &app.u.sa, &app.len) != 0 ||
		    !slim_inaddr_v4_or_ov6(&app.u.sa, app.len, &ip, &p))
			return false;
	}
	*port = p;
	/* An AF_INET6 host socket binds ::, not IPV6_V6ONLY: it carries IPv4. */
	struct slim_inaddr host;
	if (v6) {
		memset(&host, 0, sizeof host);
		host.u.in6.sin6_family = AF_INET6;
		host.u.in6.sin6_port = p;
		host.len = sizeof host.u.in6;
	} else {
		slim_inaddr_set(&host, htonl(INADDR_ANY), p, false);
	}
	if (REAL(bind)(ps, &host.u.sa, host.len) == 0)
		return true;
	slim_debug("slim: fd %d: port %P is taken in the host namespace; using the overlay", fd, p);
	return false;
}

/*
 * Puts the host socket ps under the app's fd number: out of every epoll
 * set first (no registration goes stale), then dup3. ps is closed either
 * way. false: nothing changed (the registrations are back).
 */
static bool swap_in(int fd, int ps, int fdfl, const struct slim_ext *xr, bool *deleted)
{
	for (int i = 0; xr != NULL && i < xr->nregs; i++)
		deleted[i] = REAL(epoll_ctl)(xr->regs[i].epfd, EPOLL_CTL_DEL, fd, NULL) == 0;
	bool ok = REAL(dup3)(ps, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) == fd;
	if (!ok)
		epoll_restore(fd, xr, deleted);
	slim_hidden_close(ps);
	return ok;
}

/* Sends the preamble without blocking: 1 sent, 0 not yet (no handshake), -errno. */
static int send_preamble(int fd, const uint8_t pre[SLIM_PREAMBLE_LEN])
{
	ssize_t n = send(fd, pre, SLIM_PREAMBLE_LEN, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n == SLIM_PREAMBLE_LEN)
		return 1;
	if (n >= 0)
		return -EIO;
	if (errno == EINPROGRESS || errno == EAGAIN)
		return 0;
	return -errno;
}

/*
 * Connects to the host listener and sends the preamble in the SYN, in one
 * call that never waits (MSG_FASTOPEN): 1 sent, -EINPROGRESS connecting
 * without it (TFO off for the route: complete_handshake sends it), -errno.
 */
static int send_preamble_to(int fd, const uint8_t pre[SLIM_PREAMBLE_LEN],
			    const struct slim_inaddr *host)
{
	ssize_t n = sendto(fd, pre, SLIM_PREAMBLE_LEN, MSG_FASTOPEN | MSG_NOSIGNAL | MSG_DONTWAIT,
			   &host->u.sa, host->len);
	if (n == SLIM_PREAMBLE_LEN)
		return 1;
	if (n >= 0)
		return -EIO;
	return -errno;
}

/*
 * After the first send: waits as the app's connect would, and sends the
 * preamble if it did not ride in the SYN (TFO disabled for the route by
 * the kernel). A non-blocking app waits here only in that case, at most a
 * second. 0, or an errno for the app.
 */
static int complete_handshake(int fd, const struct slim_inaddr *host, bool blocking, bool sent,
			      const uint8_t pre[SLIM_PREAMBLE_LEN])
{
	int err;
	if (blocking)
		err = wait_connected_blocking(fd, host);
	else if (!sent)
		err = wait_connected(fd, 1000);
	else
		return 0;
	if (err == 0 && !sent) {
		int r = send_preamble(fd, pre);
		err = r == 1 ? 0 : r == 0 ? EIO : -r;
		/* Connected now: make a later connect() say EISCONN. */
		if (err == 0 && !blocking)
			wait_connected_blocking(fd, host);
	}
	if (!sent && (err == EINPROGRESS || err == EINTR))
		REAL(shutdown)(fd, SHUT_RDWR); /* it can never carry its preamble */
	return err;
}

/*
 * The host listener refused the connection: its app is not seen accepting
 * (its host listener does not listen), or it went and the directory is
 * behind. The app's own socket was replaced by the host socket, so a new
 * one takes its place, dressed the same way (options, flags, bound
 * address, epoll sets), and connects over the overlay, where the server
 * may well accept. Returns connect()'s result.
 */
static int retry_over_overlay(int fd, const struct cand *c, const struct slim_inaddr *dst, int fl,
			      int fdfl, uint16_t lport)
{
	const struct slim_ext *xr = c->has_ext ? &c->x : NULL;
	bool v6 = (c->flags & SLIM_F_INET6) != 0;
	int s = REAL(socket)(v6 ? AF_INET6 : AF_INET,
			     SOCK_STREAM | SOCK_CLOEXEC | ((fl & O_NONBLOCK) ? SOCK_NONBLOCK : 0), 0);
	if (s < 0) {
		errno = ECONNREFUSED;
		return -1;
	}
	for (int i = 0; xr != NULL && i < xr->nopts; i++)
		REAL(setsockopt)(s, xr->opts[i].level, xr->opts[i].name, xr->opts[i].val, xr->opts[i].len);
	if (c->flags & SLIM_F_BOUND0) {
		struct slim_inaddr b;
		uint16_t port = (c->flags & SLIM_F_BOUND_PORT) ? c->bound_port : lport;
		if (c->flags & SLIM_F_BOUND_IP) {
			slim_inaddr_set(&b, c->bound_ip, port, v6);
		} else if (v6) {
			memset(&b, 0, sizeof b); /* :: */
			b.u.in6.sin6_family = AF_INET6;
			b.u.in6.sin6_port = port;
			b.len = sizeof b.u.in6;
		} else {
			slim_inaddr_set(&b, htonl(INADDR_ANY), port, false);
		}
		REAL(bind)(s, &b.u.sa, b.len);
	}
	bool deleted[SLIM_MAX_EPREGS] = {0};
	if (!swap_in(fd, s, fdfl, xr, deleted)) {
		errno = ECONNREFUSED;
		return -1;
	}
	slim_set_kind(fd, SLIM_NONE); /* a plain overlay socket from now on */
	slim_stats_fallback(SLIM_FB_NODIR);
	int r = REAL(connect)(fd, &dst->u.sa, dst->len);
	int err = errno;
	epoll_restore(fd, xr, deleted); /* connecting now: no EPOLLHUP */
	uint32_t dip = 0;
	uint16_t dport = 0;
	slim_inaddr_v4(&dst->u.sa, dst->len, &dip, &dport);
	slim_debug("slim: fd %d: %A:%P refused on the host; over the overlay", fd, dip, dport);
	errno = r == 0 ? errno : err;
	return r;
}

/*
 * A listener the directory lists as pending (its app is not seen accepting
 * yet) may be about to be armed: the app was told of the client (netperf's
 * data port, "ready" on a control connection) just before it accepts, or
 * it is still starting. A blocking connect waits up to PENDING_WAIT_MS for
 * it, a non-blocking one PENDING_WAIT_NB_MS, polling the directory every
 * millisecond; then the overlay. Host listeners that stayed pending, or
 * refused a connection (gone, or handed to another process, and the
 * directory behind), are skipped for SKIP_MS: connects to them go straight
 * over the overlay. A lossy table: a slot holds the last destination that
 * hashed there.
 */
#define PENDING_WAIT_MS 250
#define PENDING_WAIT_NB_MS 20
#define SKIP_MS 1000
#define SKIP_SLOTS 256

static _Atomic uint64_t skipped[SKIP_SLOTS];
static _Atomic int64_t skipped_until[SKIP_SLOTS];

static uint64_t dest_key(uint32_t dip, uint16_t dport, uint32_t hip, uint16_t hport)
{
	uint64_t k = ((uint64_t)dip << 32 | (uint64_t)dport << 16 | hport) ^
		     ((uint64_t)hip * 0x9e3779b97f4a7c15ull);
	return k == 0 ? 1 : k;
}

static bool is_skipped(uint64_t key)
{
	unsigned int i = key % SKIP_SLOTS;
	return atomic_load_explicit(&skipped[i], memory_order_relaxed) == key &&
	       slim_now_ms() < atomic_load_explicit(&skipped_until[i], memory_order_relaxed);
}

static void skip_for_a_while(uint64_t key)
{
	unsigned int i = key % SKIP_SLOTS;
	atomic_store_explicit(&skipped_until[i], slim_now_ms() + SKIP_MS, memory_order_relaxed);
	atomic_store_explicit(&skipped[i], key, memory_order_relaxed);
}

/*
 * A connect to a pending listener of this very process: the app will
 * accept (why else connect?), so it is armed now.
 */
static int arm_own(uint32_t dip, uint16_t dport, bool ov6, uint32_t *hip, uint16_t *hport)
{
	struct slim_listener *l = slim_listener_find(dip, dport);
	if (l == NULL)
		return SLIM_DIR_PENDING;
	slim_listener_want(l, -1);
	slim_listener_put(l, -1);
	return slim_dir_lookup_fam(dip, dport, ov6, hip, hport);
}

/*
 * The directory's answer for dst, waiting for a pending listener to be
 * armed (how long depends on fd's O_NONBLOCK): 1 with its host listener,
 * or 0 (the overlay).
 */
static int lookup_waiting(int fd, uint32_t dip, uint16_t dport, uint32_t self_ip, bool ov6,
			  uint32_t *hip, uint16_t *hport)
{
	int r = slim_dir_lookup_fam(dip, dport, ov6, hip, hport);
	if (r == SLIM_DIR_PENDING && dip == self_ip)
		r = arm_own(dip, dport, ov6, hip, hport);
	if (r != SLIM_DIR_PENDING)
		return r == 1;
	uint64_t key = dest_key(dip, dport, *hip, 0);
	if (is_skipped(key))
		return 0;
	int fl = REAL(fcntl)(fd, F_GETFL);
	int wait_ms = fl >= 0 && (fl & O_NONBLOCK) ? PENDING_WAIT_NB_MS : PENDING_WAIT_MS;
	int64_t deadline = slim_now_ms() + wait_ms;
	while (r == SLIM_DIR_PENDING && slim_now_ms() < deadline) {
		struct timespec ts = {0, 1000000L};
		nanosleep(&ts, NULL);
		r = slim_dir_lookup_fam(dip, dport, ov6, hip, hport);
	}
	if (r == SLIM_DIR_PENDING) {
		slim_debug("slim: %A:%P is not accepted from yet; over the overlay", dip, dport);
		skip_for_a_while(key);
	}
	return r == 1;
}

/* An accelerated connect: what it needs, and what a retry over the overlay needs. */
struct attempt {
	const struct sockaddr_in *dst; /* the destination as IPv4 */
	const struct slim_inaddr *orig; /* as the app gave it (v4-mapped on an AF_INET6 socket) */
	struct cand c;
	const struct slim_ext *xr;
	struct slim_self self;
	uint32_t hip;
	uint16_t hport;
	int64_t started;
	int fl, fdfl;
	uint16_t lport; /* the local port once known */
	bool deleted[SLIM_MAX_EPREGS];
};

#define REFUSED 2 /* the host refused: a host socket under fd, in the epoll sets */

/* The connect over a host socket: 0 or -1 (errno) for the app, PASS or REFUSED. */
static int attempt_host(int fd, struct attempt *a)
{
	uint32_t dip = a->dst->sin_addr.s_addr;
	uint16_t dport = a->dst->sin_port;
	int reason;
	uint16_t lport = 0; /* the local port, when known before connecting */
	int ps = host_socket_for(fd, &a->c, a->xr, &a->fl, &a->fdfl, &reason);
	if (ps < 0)
		return fall_back(reason);
	if ((a->c.flags & SLIM_F_BOUND0) && !bind_like_app(fd, ps, &a->c, &lport)) {
		slim_hidden_close(ps);
		return fall_back(SLIM_FB_BOUND);
	}
	if (!swap_in(fd, ps, a->fdfl, a->xr, a->deleted))
		return fall_back(SLIM_FB_OTHER);
	a->lport = lport;
	bool restored = false;

	struct slim_fd *e = slim_ent(fd);
	struct slim_conn conn = {.lip = a->self.ip, .pip = dip, .lport = lport, .pport = dport};
	bool ov6 = slim_inaddr_is_ov6(a->orig);
	conn.v6 = ov6 ? SLIM_FORM_OV6 : (a->c.flags & SLIM_F_INET6) ? SLIM_FORM_MAPPED : SLIM_FORM_V4;
	slim_lock(fd); /* the recorded state stays until success: a retry needs it */
	e->u.c = conn;
	atomic_store_explicit(&e->kind, SLIM_CONN, memory_order_relaxed);
	slim_unlock(fd);

	struct slim_inaddr host;
	slim_inaddr_set(&host, a->hip, a->hport, conn.v6);
	bool blocking = !(a->fl & O_NONBLOCK);
	bool sent = false;
	int err = 0;
	uint8_t pre[SLIM_PREAMBLE_LEN];
	if (lport != 0) {
		/*
		 * The port is known (the app bound it): connect and send the
		 * preamble in the SYN in one call, without waiting.
		 */
		slim_preamble_build(pre, a->self.ip, lport, dip, dport);
		if (ov6)
			slim_preamble_mark_ov6(pre);
		int r = send_preamble_to(fd, pre, &host);
		if (r < 0) {
			err = -r;
			if (err != EINPROGRESS)
				goto fail;
			err = 0; /* connecting, the preamble not sent (TFO off for the route) */
		}
		sent = r == 1;
	} else {
		if (REAL(connect)(fd, &host.u.sa, host.len) != 0) {
			/* Not deferred (TFO off for this route): a plain handshake. */
			err = errno;
			if (err != EINPROGRESS)
				goto fail;
		}
		struct slim_inaddr local;
		local.len = sizeof local.u;
		if (REAL(getsockname)(fd, &local.u.sa, &local.len) != 0) {
			err = errno;
			goto fail;
		}
		/* sin_port and sin6_port are at the same place. */
		uint16_t lp = local.u.in.sin_port;
		slim_lock(fd);
		e->u.c.lport = lp;
		slim_unlock(fd);
		a->lport = lp;

		slim_preamble_build(pre, a->self.ip, lp, dip, dport);
		if (ov6)
			slim_preamble_mark_ov6(pre);
		if (err == 0) {
			int r = send_preamble(fd, pre);
			if (r < 0) {
				err = -r;
				goto fail;
			}
			sent = r == 1;
		}
	}
	/*
	 * Back into the epoll sets once the socket is connecting: added while
	 * it was still unconnected it would report EPOLLHUP.
	 */
	epoll_restore(fd, a->xr, a->deleted);
	restored = true;
	err = complete_handshake(fd, &host, blocking, sent, pre);
	if (sent && (err == EINTR || err == EINPROGRESS)) {
		/* Like the kernel: the connection goes on in the background. */
		slim_stats_setup(a->started);
		errno = err;
		return -1;
	}
	if (err == ECONNREFUSED)
		return REFUSED;
	if (err != 0)
		goto fail;
	slim_stats_setup(a->started);

	slim_lock(fd);
	slim_ext_free(e);
	slim_unlock(fd);
	slim_debug("slim: fd %d: %A:%P via host %A:%P", fd, dip, dport, a->hip, a->hport);
	if (blocking || !sent)
		return 0;
	errno = EINPROGRESS;
	return -1;

fail:
	if (!restored)
		epoll_restore(fd, a->xr, a->deleted);
	back_to_cand(fd, &a->c);
	slim_debug("slim: fd %d: %A:%P via host %A:%P failed: errno %d", fd, dip, dport, a->hip,
		   a->hport, err);
	errno = a->self.secure && err == EPERM ? ECONNREFUSED : err;
	return -1;
}

static int try_connect(int fd, const struct sockaddr_in *dst, const struct slim_inaddr *orig)
{
	struct attempt a; /* not zeroed whole: the recorded state is large */
	a.dst = dst;
	a.orig = orig;
	a.lport = 0;
	memset(a.deleted, 0, sizeof a.deleted);
	snapshot_cand(fd, &a.c);
	a.started = slim_now_us();
	int reason;
	if (!accelerable(&a.c, dst, &a.self, &reason))
		return fall_back(reason);
	bool ov6 = slim_inaddr_is_ov6(orig);
	if ((a.c.flags & SLIM_F_INET6) &&
	    !inet6_accelerable(fd, ov6, (a.c.flags & SLIM_F_BOUND_IP) != 0))
		return PASS;
	a.xr = a.c.has_ext ? &a.c.x : NULL;
	uint32_t dip = dst->sin_addr.s_addr;
	uint16_t dport = dst->sin_port;
	if (!lookup_waiting(fd, dip, dport, a.self.ip, ov6, &a.hip, &a.hport)) {
		slim_debug("slim: fd %d: %A:%P has no accelerated listener; over the overlay", fd, dip, dport);
		return fall_back(SLIM_FB_NODIR);
	}
	uint64_t key = dest_key(dip, dport, a.hip, a.hport);
	if (is_skipped(key)) {
		slim_debug("slim: fd %d: %A:%P refused lately; over the overlay", fd, dip, dport);
		return fall_back(SLIM_FB_NODIR);
	}
	int r = attempt_host(fd, &a);
	if (r != REFUSED)
		return r;
	skip_for_a_while(key);
	return retry_over_overlay(fd, &a.c, orig, a.fl, a.fdfl, a.lport);
}

/*
 * The IPv4 destination of a connect on candidate fd, in dst4 (and as the
 * app gave it in orig): an AF_INET address on an AF_INET socket, a
 * v4-mapped one on an AF_INET6 socket. false: the kernel's business (a
 * family mismatch, a short address), or an IPv6 destination (left alone,
 * said once and counted unless it is loopback or link-local).
 */
static bool ipv4_destination(int fd, const struct sockaddr *sa, socklen_t len,
			     struct sockaddr_in *dst4, struct slim_inaddr *orig)
{
	struct slim_fd *e = slim_ent(fd);
	bool v6 = (e->flags & SLIM_F_INET6) != 0;
	if (sa == NULL || sa->sa_family != (v6 ? AF_INET6 : AF_INET) ||
	    len < (v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)))
		return false;
	uint32_t ip;
	uint16_t port;
	if (!v6) {
		memcpy(dst4, sa, sizeof *dst4);
		orig->len = sizeof orig->u.in;
		memcpy(&orig->u.in, sa, sizeof orig->u.in);
		return true;
	}
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	int ov6 = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) ? 0 : slim_ov6_dest(fd, in6, dst4);
	if (ov6 != 0) {
		orig->len = sizeof orig->u.in6;
		memcpy(&orig->u.in6, sa, sizeof orig->u.in6);
		return ov6 > 0;
	}
	if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) && !IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) &&
		    !IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			slim_v6_left_alone(fd, SLIM_V6_DEST);
		return false;
	}
	slim_inaddr_v4(sa, len, &ip, &port);
	memset(dst4, 0, sizeof *dst4);
	dst4->sin_family = AF_INET;
	dst4->sin_addr.s_addr = ip;
	dst4->sin_port = port;
	orig->len = sizeof orig->u.in6;
	memcpy(&orig->u.in6, sa, sizeof orig->u.in6);
	return true;
}

SLIM_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	const struct sockaddr *sa = addr.__sockaddr__;
	if (likely(slim_kind_of(fd) != SLIM_CAND))
		return REAL(connect)(fd, sa, len);
	int saved = errno;
	struct sockaddr_in dst4;
	struct slim_inaddr orig;
	if (ipv4_destination(fd, sa, len, &dst4, &orig)) {
		int r = try_connect(fd, &dst4, &orig);
		if (r != PASS)
			return r;
	} else if (sa == NULL || sa->sa_family != AF_INET6) {
		return REAL(connect)(fd, sa, len); /* AF_UNSPEC and the like: the kernel's */
	}
	errno = saved;
	int r = REAL(connect)(fd, sa, len);
	if (r != 0 && errno == EPERM)
		errno = slim_policy_errno(EPERM);
	/*
	 * A connection under way on the overlay: this socket is no longer a
	 * candidate, so a second connect() reaches the kernel (EALREADY,
	 * EISCONN) instead of starting an accelerated one. A refused or
	 * failed connect leaves it a candidate for a retry.
	 */
	if (r == 0 || errno == EINPROGRESS || errno == EALREADY || errno == EISCONN || errno == EINTR) {
		int keep = errno;
		slim_set_kind(fd, SLIM_NONE);
		errno = keep;
	}
	return r;
}

/* The overlay addresses of an accelerated fd; false if it is not one. */
static bool conn_of(int fd, struct slim_conn *c)
{
	struct slim_fd *e = slim_ent(fd);
	slim_lock(fd);
	*c = e->u.c;
	bool conn = atomic_load_explicit(&e->kind, memory_order_relaxed) == SLIM_CONN;
	slim_unlock(fd);
	return conn;
}

SLIM_EXPORT int getsockname(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	struct sockaddr *sa = addr.__sockaddr__;
	struct slim_conn c;
	if (likely(slim_kind_of(fd) != SLIM_CONN) || sa == NULL || len == NULL || !conn_of(fd, &c))
		return REAL(getsockname)(fd, sa, len);
	slim_fill_addr(sa, len, c.lip, c.lport, c.v6);
	return 0;
}

SLIM_EXPORT int getpeername(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	struct sockaddr *sa = addr.__sockaddr__;
	if (likely(slim_kind_of(fd) != SLIM_CONN) || sa == NULL || len == NULL)
		return REAL(getpeername)(fd, sa, len);
	/* The kernel says whether it is connected (ENOTCONN); we say to whom. */
	struct sockaddr_storage tmp;
	socklen_t tlen = sizeof tmp;
	if (REAL(getpeername)(fd, (struct sockaddr *)&tmp, &tlen) != 0)
		return -1;
	struct slim_conn c;
	if (!conn_of(fd, &c))
		return REAL(getpeername)(fd, sa, len);
	slim_fill_addr(sa, len, c.pip, c.pport, c.v6);
	return 0;
}
