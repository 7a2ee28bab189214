/*
 * The server side: listen, accept, accept4 and epoll_ctl on merged
 * listeners (docs/datapath.md "Listen and accept").
 *
 * listen() listens on the app's overlay socket first, then asks the router
 * for a host listener, kept at a hidden fd and paired with the app's fd
 * through a refcounted listener object. Clients are sent to the host
 * listener only once the app is seen accepting (arm.c). accept takes from
 * the host listener first (non-blocking), then from the app's fd; a
 * blocking app waits in poll() on both.
 *
 * Known limits, documented in the report:
 *  - A blocking accept whose poll() is interrupted by a signal returns
 *    EINTR even if the handler has SA_RESTART.
 *  - SO_RCVTIMEO on the app's listener does not bound the wait.
 *  - When poll() says the app's fd is readable and another process takes
 *    the connection first, accept blocks on the app's fd alone.
 */
#include "shim.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

/*
 * The IPv4 overlay address a listener accepts on (INADDR_ANY: all) and
 * the clients it takes (*fams, directory flags: 0 for IPv4 only), or
 * false: an AF_INET6 listener that takes no overlay client the shim can
 * accelerate (IPV6_V6ONLY or bound to an IPv6 address, without an IPv6
 * overlay or outside it, or in secure mode) is left alone, said once and
 * counted.
 */
static bool listener_v4(int fd, uint32_t *ip, bool *v6, uint16_t *fams)
{
	struct slim_inaddr a;
	uint16_t port;
	a.len = sizeof a.u;
	*fams = 0;
	if (REAL(getsockname)(fd, &a.u.sa, &a.len) != 0)
		return false;
	*v6 = a.u.sa.sa_family == AF_INET6;
	bool v4 = slim_inaddr_v4(&a.u.sa, a.len, ip, &port);
	if (*v6 && !IN6_IS_ADDR_V4MAPPED(&a.u.in6.sin6_addr)) {
		int r = slim_listener_v6(fd, &a.u.in6, ip, fams); /* an IPv6 overlay */
		if (r > 0)
			return true;
		if (r < 0 && (!v4 || slim_v6only(fd))) {
			slim_v6_left_alone(fd, SLIM_V6_OVERLAY_SECURE);
			return false;
		}
	}
	if (!v4) {
		if (*v6 && !IN6_IS_ADDR_LOOPBACK(&a.u.in6.sin6_addr))
			slim_v6_left_alone(fd, SLIM_V6_BOUND);
		return false;
	}
	if (*v6 && *ip == htonl(INADDR_ANY) && slim_v6only(fd)) {
		slim_v6_left_alone(fd, SLIM_V6_ONLY);
		return false;
	}
	return true;
}

static void try_listen(int fd, int backlog)
{
	struct slim_fd *e = slim_ent(fd);
	struct slim_self self;
	uint32_t ip;
	bool v6;
	uint16_t fams;
	if (!listener_v4(fd, &ip, &v6, &fams))
		goto plain;
	if (ip != htonl(INADDR_ANY) && (ntohl(ip) >> 24) == 127)
		goto plain;
	if (!slim_hello(&self))
		goto plain;
	if (ip != htonl(INADDR_ANY) && ip != self.ip)
		goto plain;

	uint32_t oip;
	uint16_t oport;
	int h = slim_listen_request(fd, backlog, &oip, &oport);
	if (h < 0)
		goto plain;
	struct slim_listener *l = slim_listener_new(h, oip, oport);
	if (l == NULL) {
		slim_unlisten(h);
		slim_hidden_close(h);
		goto plain;
	}
	l->backlog = backlog;
	l->v6 = v6;
	l->fams = fams;
	slim_hidden_ref(h, l, 0);

	/* Registrations made before listen(). */
	struct slim_epreg regs[SLIM_MAX_EPREGS];
	int nregs = 0;
	slim_lock(fd);
	struct slim_ext *x = slim_ext_get(e, false);
	if (x != NULL) {
		nregs = x->nregs;
		memcpy(regs, x->regs, (size_t)nregs * sizeof regs[0]);
	}
	slim_ext_free(e);
	e->flags = 0;
	e->u.l = l;
	atomic_store_explicit(&e->kind, SLIM_LISTENER, memory_order_relaxed);
	slim_unlock(fd);
	slim_listener_sync_cloexec(l);
	for (int i = 0; i < nregs; i++) {
		struct epoll_event ev = {.events = regs[i].events};
		ev.data.u64 = regs[i].data;
		slim_listener_record(l, regs[i].epfd, EPOLL_CTL_ADD, &ev);
		REAL(epoll_ctl)(regs[i].epfd, EPOLL_CTL_ADD, h, &ev);
	}
	/* The app waits for it already, or it accepts where the shim sees. */
	if (nregs > 0 || slim_seen_accepting())
		slim_listener_want(l, fd);
	return;
plain:
	slim_set_kind(fd, SLIM_NONE); /* a plain listener from now on */
}

/*
 * Before a candidate socket listens, its overlay address is reserved
 * (RESERVE): a remote client that connects between the kernel's listen and
 * the peers having the LISTEN that follows (a few milliseconds) would find
 * no entry and take the overlay for the connection's life; with the
 * reservation it waits for the listener to be armed. Only a socket bound to
 * a port of the container's address, or of all its addresses, that does not
 * listen yet; the router checks the rest, and a refusal (a router from
 * before RESERVE) changes nothing.
 */
static bool reserve_before_listen(int fd)
{
	struct slim_inaddr a;
	struct slim_self self;
	uint32_t ip;
	uint16_t port;
	int on = 0;
	socklen_t len = sizeof on;
	a.len = sizeof a.u;
	if (REAL(getsockname)(fd, &a.u.sa, &a.len) != 0 || !slim_inaddr_v4(&a.u.sa, a.len, &ip, &port))
		return false;
	if (port == 0 || (ip != htonl(INADDR_ANY) && (ntohl(ip) >> 24) == 127))
		return false;
	if (a.u.sa.sa_family == AF_INET6 && slim_v6only(fd))
		return false; /* carries no IPv4: the router refuses it */
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) != 0 || on != 0)
		return false;
	if (!slim_hello(&self) || (ip != htonl(INADDR_ANY) && ip != self.ip))
		return false;
	return slim_reserve(fd);
}

SLIM_EXPORT int listen(int fd, int backlog)
{
	int kind = slim_kind_of(fd);
	bool reserved = false;
	if (kind == SLIM_CAND) {
		int saved = errno;
		reserved = reserve_before_listen(fd);
		errno = saved;
	}
	int r = REAL(listen)(fd, backlog);
	if (r != 0) {
		if (reserved) {
			int saved = errno;
			slim_unlisten(fd); /* names the reservation by the socket */
			errno = saved;
		}
		return r;
	}
	if (likely(kind != SLIM_CAND && kind != SLIM_LISTENER))
		return 0;
	int saved = errno;
	if (kind == SLIM_CAND) {
		try_listen(fd, backlog);
	} else {
		struct slim_listener *l = slim_listener_of(fd);
		if (l != NULL) {
			slim_listener_relisten(l, backlog);
			slim_listener_put(l, -1);
		}
	}
	errno = saved;
	return 0;
}

/* Reads the preamble of a fresh host connection: up to 1 s for all of it. */
static bool read_preamble(int c, uint8_t pre[SLIM_PREAMBLE_LEN])
{
	size_t got = 0;
	int64_t deadline = 0;
	while (got < SLIM_PREAMBLE_LEN) {
		ssize_t n = recv(c, pre + got, SLIM_PREAMBLE_LEN - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			return false;
		int64_t now = slim_now_ms();
		if (deadline == 0)
			deadline = now + 1000;
		if (now >= deadline)
			return false;
		struct pollfd p = {c, POLLIN, 0};
		REAL(poll)(&p, 1, (int)(deadline - now));
	}
	return true;
}

/*
 * In secure mode the kernel knows the client for sure: the router checked
 * its SYN's MAC, and the address accept() reports is the overlay address
 * it vouched for (the getpeername4 program rewrites it there too, in the
 * same call: no getpeername per connection). A preamble that names anyone
 * else is a forgery by the client.
 */
static bool peer_matches_kernel(const struct slim_inaddr *peer, const struct slim_conn *cn)
{
	struct slim_self self;
	if (!slim_hello(&self) || !self.secure)
		return true;
	uint32_t ip;
	uint16_t port;
	if (!slim_inaddr_v4(&peer->u.sa, peer->len, &ip, &port))
		return false;
	return ip == cn->pip && port == cn->pport;
}

static bool host_listening(int h)
{
	int v = 0;
	socklen_t len = sizeof v;
	return getsockopt(h, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || v == 1;
}

/*
 * One connection from the host listener: fd, -1 with EAGAIN when there is
 * none, or -1 with an error for the app (out of fds and the like).
 */
static int accept_host(struct slim_listener *l, struct sockaddr *addr, socklen_t *len, int flags)
{
	for (;;) {
		int h = slim_listener_host(l);
		if (h < 0) {
			errno = EAGAIN;
			return -1;
		}
		struct slim_inaddr peer;
		peer.len = sizeof peer.u;
		int c = REAL(accept4)(h, &peer.u.sa, &peer.len, flags);
		if (c < 0) {
			switch (errno) {
			case EINVAL:
				if (!host_listening(h)) {
					/* Shut down by another process (given away). */
					slim_listener_detach(l);
					errno = EAGAIN;
				}
				return -1;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				return -1;
			case ECONNABORTED:
			case EINTR:
				continue;
			default:
				errno = EAGAIN;
				return -1;
			}
		}
		uint8_t pre[SLIM_PREAMBLE_LEN];
		struct slim_conn cn;
		if (!read_preamble(c, pre) ||
		    !slim_preamble_parse(pre, &cn.pip, &cn.pport, &cn.lip, &cn.lport) ||
		    slim_ent(c) == NULL) {
			/* Not a Slim client: never shown to the app. */
			slim_debug("slim: host connection without a valid preamble dropped");
			REAL(close)(c);
			continue;
		}
		if (!peer_matches_kernel(&peer, &cn)) {
			slim_debug("slim: host connection whose preamble names another client dropped");
			REAL(close)(c);
			continue;
		}
		int form = slim_accepted_form(l, pre);
		if (form < 0) {
			/* A client of the other family (the directory was behind). */
			slim_debug("slim: host connection of a family the listener does not take dropped");
			REAL(close)(c);
			continue;
		}
		cn.v6 = (uint8_t)form;
		slim_set_conn(c, &cn);
		slim_fill_addr(addr, len, cn.pip, cn.pport, cn.v6);
		return c;
	}
}

/*
 * A blocking accept whose previous call had to wait polls first (the
 * accept that would find nothing is skipped), except every
 * POLL_FIRST_PROBE-th time, when an accept that succeeds at once shows
 * connections are queueing again.
 */
#define POLL_FIRST_PROBE 16

static int merged_accept(int fd, struct slim_listener *l, struct sockaddr *addr, socklen_t *len,
			 int flags)
{
	int saved = errno;
	bool host_ok = true;
	bool polled = false;
	unsigned int w = atomic_load_explicit(&l->waited, memory_order_relaxed);
	bool poll_first = w != 0 && w % POLL_FIRST_PROBE != 0;
	if (w != 0)
		atomic_store_explicit(&l->waited, w + 1 == 0 ? 1 : w + 1, memory_order_relaxed);
	for (;;) {
		int c;
		if (poll_first)
			c = (errno = EAGAIN, -1);
		else
			c = host_ok ? accept_host(l, addr, len, flags) : (errno = EAGAIN, -1);
		if (c >= 0) {
			if (w != 0 && !polled)
				atomic_store_explicit(&l->waited, 0, memory_order_relaxed);
			errno = saved;
			return c;
		}
		if (errno != EAGAIN)
			return -1;
		int fl = REAL(fcntl)(fd, F_GETFL);
		if (fl < 0)
			return -1;
		if (fl & O_NONBLOCK) {
			if (poll_first) {
				/* The app made it non-blocking since: no hint. */
				atomic_store_explicit(&l->waited, 0, memory_order_relaxed);
				poll_first = false;
				continue;
			}
			errno = saved;
			c = REAL(accept4)(fd, addr, len, flags);
			if (c >= 0)
				slim_set_kind(c, SLIM_NONE);
			return c;
		}
		poll_first = false;
		polled = true;
		if (atomic_load_explicit(&l->waited, memory_order_relaxed) == 0)
			atomic_store_explicit(&l->waited, 1, memory_order_relaxed);
		int h = host_ok ? slim_listener_host(l) : -1;
		struct pollfd p[2] = {{fd, POLLIN, 0}, {h, POLLIN, 0}};
		int r = REAL(poll)(p, h >= 0 ? 2 : 1, -1);
		if (r < 0)
			return -1; /* EINTR: like an accept interrupted by a signal */
		if (p[0].revents & (POLLERR | POLLNVAL | POLLHUP)) {
			errno = saved;
			return REAL(accept4)(fd, addr, len, flags); /* the kernel's error */
		}
		if (p[1].revents & POLLIN)
			continue;
		if (p[1].revents != 0) {
			host_ok = false; /* a broken host listener: the app's fd only */
			if (!host_listening(h))
				slim_listener_detach(l);
		}
		if (p[0].revents & POLLIN) {
			errno = saved;
			c = REAL(accept4)(fd, addr, len, flags);
			if (c >= 0)
				slim_set_kind(c, SLIM_NONE);
			return c;
		}
	}
}

static int do_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags, bool four)
{
	struct slim_fd *e = slim_ent(fd);
	if (e != NULL && atomic_load_explicit(&e->kind, memory_order_relaxed) == SLIM_LISTENER &&
	    (addr == NULL || len != NULL)) {
		struct slim_listener *l = slim_listener_of(fd);
		if (l != NULL) {
			int saved = errno;
			slim_listener_want(l, fd);
			errno = saved;
			int c = merged_accept(fd, l, addr, len, flags);
			saved = errno;
			slim_listener_put(l, -1);
			errno = saved;
			return c;
		}
	}
	int c = four ? REAL(accept4)(fd, addr, len, flags) : REAL(accept)(fd, addr, len);
	if (c >= 0 && e != NULL) {
		int saved = errno;
		slim_set_kind(c, SLIM_NONE); /* drop stale state of that number */
		errno = saved;
	}
	return c;
}

SLIM_EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	return do_accept(fd, addr.__sockaddr__, len, 0, false);
}

SLIM_EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *len, int flags)
{
	return do_accept(fd, addr.__sockaddr__, len, flags, true);
}

/* ---- epoll_ctl ---------------------------------------------------------------- */

static void record_epoll(int fd, int epfd, int op, const struct epoll_event *ev)
{
	struct slim_fd *e = slim_ent(fd);
	slim_lock(fd);
	if (atomic_load_explicit(&e->kind, memory_order_relaxed) != SLIM_CAND ||
	    (e->flags & SLIM_F_NOACCEL)) {
		slim_unlock(fd);
		return;
	}
	struct slim_ext *x = slim_ext_get(e, op == EPOLL_CTL_ADD);
	int i = 0;
	if (x != NULL)
		for (i = 0; i < x->nregs; i++)
			if (x->regs[i].epfd == epfd)
				break;
	switch (op) {
	case EPOLL_CTL_ADD:
		if (x == NULL || (i == x->nregs && x->nregs == SLIM_MAX_EPREGS)) {
			e->flags |= SLIM_F_NOACCEL; /* cannot replay: leave it alone */
			break;
		}
		if (i == x->nregs)
			x->nregs++;
		x->regs[i].epfd = epfd;
		x->regs[i].events = ev->events;
		x->regs[i].data = ev->data.u64;
		break;
	case EPOLL_CTL_MOD:
		if (x != NULL && i < x->nregs) {
			x->regs[i].events = ev->events;
			x->regs[i].data = ev->data.u64;
		}
		break;
	case EPOLL_CTL_DEL:
		if (x != NULL && i < x->nregs)
			x->regs[i] = x->regs[--x->nregs];
		break;
	}
	slim_unlock(fd);
}

/*
 * A merged listener's registration is mirrored on its host listener, same
 * events and data, and recorded (for a host listener that comes later or
 * goes). Registering it shows the app will accept: it arms the host
 * listener (arm.c).
 */
static void mirror_epoll(int fd, int epfd, int op, const struct epoll_event *ev)
{
	struct slim_listener *l = slim_listener_of(fd);
	if (l == NULL)
		return;
	if (op != EPOLL_CTL_DEL && ev == NULL) {
		slim_listener_put(l, -1);
		return;
	}
	slim_listener_record(l, epfd, op, ev);
	int h = op == EPOLL_CTL_DEL ? slim_listener_host(l) : slim_listener_want(l, fd);
	if (h >= 0) {
		struct epoll_event copy;
		if (ev != NULL)
			copy = *ev;
		REAL(epoll_ctl)(epfd, op, h, ev != NULL ? &copy : NULL);
	}
	slim_listener_put(l, -1);
}

SLIM_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int kind = slim_kind_of(fd);
	if (likely(kind == SLIM_NONE || kind == SLIM_CONN))
		return REAL(epoll_ctl)(epfd, op, fd, ev);
	if (kind == SLIM_HIDDEN_FD) {
		errno = EBADF; /* not the app's */
		return -1;
	}
	int r = REAL(epoll_ctl)(epfd, op, fd, ev);
	if (r != 0)
		return r;
	int saved = errno;
	if (kind == SLIM_CAND && (op == EPOLL_CTL_DEL || ev != NULL)) {
		record_epoll(fd, epfd, op, ev);
	} else if (kind == SLIM_LISTENER) {
		mirror_epoll(fd, epfd, op, ev);
	}
	errno = saved;
	return r;
}
