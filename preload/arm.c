/*
 * A host listener gets clients only once the app is seen accepting from
 * it (docs/datapath.md "Accepts the shim does not see").
 *
 * After LISTEN the router lists the listener as pending: in the directory
 * without a host port, so no client connects to it; a client's shim waits
 * a little for it (the app may be about to accept), then uses the overlay.
 * The first accept, poll, select or epoll registration of the app's
 * listener that the shim sees arms it: PUBLISH, and the router gives the
 * entry its host port (or adds it again if its sweep dropped it
 * meanwhile). An app that accepts in ways the shim does not see (io_uring,
 * a raw accept4 syscall) never arms it: its clients use the overlay, and
 * the router drops the pending entry after a second.
 *
 * A listener handed to another process (sendmsg with SCM_RIGHTS) or shut
 * down by the app stops being accelerated in this process: UNLISTEN, then
 * shutdown() of the host listener, which resets what waited in its queue
 * and refuses what comes later (clients retry over the overlay). A
 * listening socket received over SCM_RIGHTS is adopted: it asks for a host
 * listener of its own (LISTEN) the first time the app is seen accepting
 * from it.
 */
#include "shim.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

struct slim_listener *slim_listener_of(int fd)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL || atomic_load_explicit(&e->kind, memory_order_relaxed) != SLIM_LISTENER)
		return NULL;
	slim_lock(fd);
	struct slim_listener *l = e->u.l;
	bool ok = atomic_load_explicit(&e->kind, memory_order_relaxed) == SLIM_LISTENER && l != NULL;
	if (ok)
		atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
	slim_unlock(fd);
	return ok ? l : NULL;
}

int slim_listener_host(struct slim_listener *l)
{
	int st = atomic_load_explicit(&l->state, memory_order_acquire);
	if (st != SLIM_L_ARMED && st != SLIM_L_PENDING)
		return -1;
	return atomic_load_explicit(&l->hidden, memory_order_relaxed);
}

/* ---- epoll registrations ---------------------------------------------------- */

static void reg_lock(struct slim_listener *l)
{
	uint32_t expect = 0;
	while (!atomic_compare_exchange_weak_explicit(&l->reg_lock, &expect, 1, memory_order_acquire,
						      memory_order_relaxed)) {
		expect = 0;
		__builtin_ia32_pause();
	}
}

static void reg_unlock(struct slim_listener *l)
{
	atomic_store_explicit(&l->reg_lock, 0, memory_order_release);
}

void slim_listener_record(struct slim_listener *l, int epfd, int op, const struct epoll_event *ev)
{
	reg_lock(l);
	int i = 0;
	while (i < l->nregs && l->regs[i].epfd != epfd)
		i++;
	if (op == EPOLL_CTL_DEL) {
		if (i < l->nregs)
			l->regs[i] = l->regs[--l->nregs];
	} else if (i == l->nregs && i == SLIM_MAX_EPREGS) {
		l->regs_lost = true;
	} else {
		if (i == l->nregs)
			l->nregs++;
		l->regs[i] = (struct slim_epreg){epfd, ev->events, ev->data.u64};
	}
	reg_unlock(l);
}

/* The recorded registrations, copied out (no syscall under the lock). */
static int regs_of(struct slim_listener *l, struct slim_epreg *out)
{
	reg_lock(l);
	int n = l->nregs;
	memcpy(out, l->regs, (size_t)n * sizeof *out);
	reg_unlock(l);
	return n;
}

/* Puts host in (add) or takes it out of the app's epoll sets. */
static void mirror_all(struct slim_listener *l, int host, bool add)
{
	struct slim_epreg regs[SLIM_MAX_EPREGS];
	int n = regs_of(l, regs);
	for (int i = 0; i < n; i++) {
		struct epoll_event ev = {.events = regs[i].events};
		ev.data.u64 = regs[i].data;
		REAL(epoll_ctl)(regs[i].epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, host, add ? &ev : NULL);
	}
}

/* ---- arming ------------------------------------------------------------------ */

/* PENDING to ARMED: PUBLISH, by the thread that made the change. */
static int arm(struct slim_listener *l)
{
	int h = atomic_load_explicit(&l->hidden, memory_order_relaxed);
	uint8_t expect = SLIM_L_PENDING;
	if (h >= 0 && atomic_compare_exchange_strong(&l->state, &expect, SLIM_L_ARMED)) {
		slim_publish(h, l->ip, l->port, l->fams);
		slim_debug("slim: host listener fd %d armed for %A:%P", h, l->ip, l->port);
	}
	return slim_listener_host(l);
}

/* ADOPT to ARMED: a host listener of our own (LISTEN), armed at once. */
static int adopt_now(struct slim_listener *l, int app_fd)
{
	uint8_t expect = SLIM_L_ADOPT;
	if (!atomic_compare_exchange_strong(&l->state, &expect, SLIM_L_BUSY))
		return slim_listener_host(l);
	uint32_t ip;
	uint16_t port;
	int h = slim_listen_request(app_fd, l->backlog, &ip, &port);
	if (h < 0) {
		atomic_store(&l->state, SLIM_L_OFF);
		return -1;
	}
	l->ip = ip;
	l->port = port;
	l->owner = getpid();
	atomic_store_explicit(&l->hidden, h, memory_order_relaxed);
	slim_hidden_ref(h, l, 0);
	slim_listener_sync_cloexec(l);
	mirror_all(l, h, true);
	atomic_store_explicit(&l->state, SLIM_L_ARMED, memory_order_release);
	slim_publish(h, ip, port, l->fams);
	slim_debug("slim: fd %d: adopted listener %A:%P, host listener fd %d", app_fd, ip, port, h);
	return h;
}

/*
 * Whether this process, or the one it forked from, was seen waiting to
 * accept: an accept, poll, select or epoll registration of one of its
 * listeners. Such a program accepts where the shim sees it, so a listener
 * it makes later is armed at listen(): a listener whose port the app
 * tells its peer before it accepts (FTP's passive data connection: the
 * port in the PASV reply, the accept once RETR comes) gets its client at
 * once; pending, the client waited in vain (250 ms for a blocking
 * connect) and used the overlay. A new image (exec) proves itself again.
 */
static _Atomic bool seen_accepting;

bool slim_seen_accepting(void)
{
	return atomic_load_explicit(&seen_accepting, memory_order_relaxed);
}

int slim_listener_want(struct slim_listener *l, int app_fd)
{
	if (app_fd >= 0 && !atomic_load_explicit(&seen_accepting, memory_order_relaxed))
		atomic_store_explicit(&seen_accepting, true, memory_order_relaxed);
	switch (atomic_load_explicit(&l->state, memory_order_acquire)) {
	case SLIM_L_ARMED:
		return atomic_load_explicit(&l->hidden, memory_order_relaxed);
	case SLIM_L_PENDING:
		return arm(l);
	case SLIM_L_ADOPT:
		return app_fd >= 0 ? adopt_now(l, app_fd) : -1;
	default:
		return -1;
	}
}

/* ---- letting go ------------------------------------------------------------------ */

/*
 * Stops accelerating l in this process: UNLISTEN (the router replies once
 * its peers dropped the entry), out of the app's epoll sets, and
 * shutdown(), which resets the connections in the host listener's queue
 * (nobody here would accept them) and refuses later ones (their shims
 * retry over the overlay). The host listener's fd stays open (another
 * thread may be polling it) until the listener goes.
 */
static void give_up(struct slim_listener *l)
{
	uint8_t st = atomic_exchange(&l->state, SLIM_L_OFF);
	if (st != SLIM_L_PENDING && st != SLIM_L_ARMED)
		return;
	int h = atomic_load_explicit(&l->hidden, memory_order_relaxed);
	if (h < 0)
		return;
	slim_unlisten(h);
	mirror_all(l, h, false);
	REAL(shutdown)(h, SHUT_RDWR);
	slim_debug("slim: host listener fd %d for %A:%P withdrawn", h, l->ip, l->port);
}

void slim_listener_detach(struct slim_listener *l)
{
	uint8_t st = SLIM_L_ARMED;
	if (!atomic_compare_exchange_strong(&l->state, &st, SLIM_L_OFF))
		return;
	int h = atomic_load_explicit(&l->hidden, memory_order_relaxed);
	mirror_all(l, h, false);
	slim_debug("slim: host listener fd %d for %A:%P was shut down elsewhere", h, l->ip, l->port);
}

/*
 * A host listener's backlog is never below SLIM_MIN_HOST_BACKLOG, whatever
 * the app asks (the router's minHostBacklog, router/sockets_linux.go, says
 * why): a listen() that only changes the backlog keeps that floor.
 */
void slim_listener_relisten(struct slim_listener *l, int backlog)
{
	l->backlog = backlog;
	int h = slim_listener_host(l);
	if (h >= 0)
		REAL(listen)(h, backlog > SLIM_MIN_HOST_BACKLOG ? backlog : SLIM_MIN_HOST_BACKLOG);
}

/* ---- shutdown ---------------------------------------------------------------------- */

SLIM_EXPORT int shutdown(int fd, int how)
{
	int r = REAL(shutdown)(fd, how);
	/* SHUT_RD or SHUT_RDWR stops a listening socket listening. */
	if (likely(r != 0 || how == SHUT_WR || slim_kind_of(fd) != SLIM_LISTENER))
		return r;
	int saved = errno;
	struct slim_listener *l = slim_listener_of(fd);
	if (l != NULL) {
		give_up(l);
		slim_listener_put(l, -1);
	}
	errno = saved;
	return r;
}

/* ---- SCM_RIGHTS ---------------------------------------------------------------------- */

/* Calls fn for every fd a control buffer carries in SCM_RIGHTS. */
static void for_each_passed(const struct msghdr *msg, void (*fn)(int fd))
{
	if (msg->msg_control == NULL || msg->msg_controllen < sizeof(struct cmsghdr))
		return;
	const char *end = (const char *)msg->msg_control + msg->msg_controllen;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c != NULL;
	     c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_len < CMSG_LEN(0) || (const char *)c + c->cmsg_len > end)
			break;
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			fn(fd);
		}
	}
}

/* A listener that went to another process: it accepts there now. */
static void passed_away(int fd)
{
	struct slim_listener *l = slim_listener_of(fd);
	if (l != NULL) {
		give_up(l);
		slim_listener_put(l, -1);
	}
}

static int sockopt_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof v;
	return getsockopt(fd, level, name, &v, &len) == 0 ? v : -1;
}

/*
 * A socket received from another process: if it is a TCP listener that
 * carries IPv4 (AF_INET, or AF_INET6 on :: without IPV6_V6ONLY or on a
 * v4-mapped address), it becomes a merged listener waiting for the app's
 * first accept; a TCP connection may be an accelerated one the sender
 * handed off (handoff.c).
 */
static void received(int fd)
{
	struct slim_fd *e = slim_ent(fd);
	if (e == NULL)
		return;
	slim_set_kind(fd, SLIM_NONE); /* a new number: nothing stale */
	int domain = sockopt_int(fd, SOL_SOCKET, SO_DOMAIN);
	if ((domain != AF_INET && domain != AF_INET6) ||
	    sockopt_int(fd, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_TCP)
		return;
	int listening = sockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN);
	if (listening == 0)
		slim_handoff_received(fd, domain); /* a connection: handoff.c */
	if (listening != 1)
		return;
	struct slim_inaddr a;
	uint32_t ip;
	uint16_t port;
	a.len = sizeof a.u;
	if (REAL(getsockname)(fd, &a.u.sa, &a.len) != 0 ||
	    !slim_inaddr_v4(&a.u.sa, a.len, &ip, &port) || (ntohl(ip) >> 24) == 127 ||
	    (domain == AF_INET6 && ip == htonl(INADDR_ANY) && slim_v6only(fd)))
		return;
	struct tcp_info ti;
	socklen_t tlen = sizeof ti;
	int backlog = 128;
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) == 0 && ti.tcpi_sacked > 0)
		backlog = (int)ti.tcpi_sacked; /* a listener's: its backlog */
	struct slim_listener *l = slim_listener_new(-1, ip, port);
	if (l == NULL)
		return;
	l->backlog = backlog;
	l->v6 = domain == AF_INET6;
	l->fams = slim_listener_fams_of(fd);
	atomic_store(&l->state, SLIM_L_ADOPT);
	slim_lock(fd);
	e->u.l = l;
	atomic_store_explicit(&e->kind, SLIM_LISTENER, memory_order_relaxed);
	slim_unlock(fd);
	slim_debug("slim: fd %d: received a listener; accelerated once the app accepts", fd);
}

static bool tracking(void)
{
	return atomic_load_explicit(&slim_table, memory_order_relaxed) != NULL;
}

/*
 * Connections about to be passed leave their names in the container's name
 * book before the send (the receiver reads them as soon as it has the
 * socket); listeners that were passed stop being accelerated here after it.
 */
SLIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	bool passing = msg != NULL && msg->msg_controllen != 0 && tracking();
	if (unlikely(passing)) {
		int saved = errno;
		for_each_passed(msg, slim_handoff);
		errno = saved;
	}
	ssize_t r = REAL(sendmsg)(fd, msg, flags);
	if (likely(r < 0 || !passing) ||
	    atomic_load_explicit(&slim_nlisteners, memory_order_relaxed) == 0)
		return r;
	int saved = errno;
	for_each_passed(msg, passed_away);
	errno = saved;
	return r;
}

SLIM_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags)
{
	if (vec != NULL && tracking()) {
		int saved = errno;
		for (unsigned int i = 0; i < n; i++)
			if (vec[i].msg_hdr.msg_controllen != 0)
				for_each_passed(&vec[i].msg_hdr, slim_handoff);
		errno = saved;
	}
	int r = REAL(sendmmsg)(fd, vec, n, flags);
	if (r <= 0 || atomic_load_explicit(&slim_nlisteners, memory_order_relaxed) == 0)
		return r;
	int saved = errno;
	for (int i = 0; i < r; i++)
		if (vec[i].msg_hdr.msg_controllen != 0)
			for_each_passed(&vec[i].msg_hdr, passed_away);
	errno = saved;
	return r;
}

SLIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t r = REAL(recvmsg)(fd, msg, flags);
	if (likely(r < 0 || msg == NULL || msg->msg_controllen == 0) || !tracking())
		return r;
	int saved = errno;
	for_each_passed(msg, received);
	errno = saved;
	return r;
}

SLIM_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags,
			 struct timespec *timeout)
{
	int r = REAL(recvmmsg)(fd, vec, n, flags, timeout);
	if (r <= 0 || !tracking())
		return r;
	int saved = errno;
	for (int i = 0; i < r; i++)
		if (vec[i].msg_hdr.msg_controllen != 0)
			for_each_passed(&vec[i].msg_hdr, received);
	errno = saved;
	return r;
}
