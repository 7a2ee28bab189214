/* Shared helpers for the socket-semantics programs in testdata/c.
 *
 * Every program prints one line per check, "ok NAME" or "FAIL NAME: reason",
 * informational lines starting with "# ", and address lines
 *   addr local=IP:PORT peer=IP:PORT side=client|server [acc=IP:PORT]
 * so a harness can assert the addresses an application sees. It exits 0 only
 * if every check passed (and at least one ran). SLIMTEST_SKIP (see
 * check_skipped) turns named failures into "skip NAME: reason" lines.
 *
 * CLI common to all programs (prog_main):
 *   PROG server ADDR PORT [N]   serve on ADDR:PORT (forever, or N connections);
 *                               also holds ADDR:PORT+1 bound but not
 *                               listening, so clients get ECONNREFUSED there
 *   PROG client ADDR PORT [REFUSED_PORT]
 *                               run the client checks against that server
 *                               (REFUSED_PORT defaults to PORT+1)
 *   PROG selftest ADDR          both in one process on ephemeral ports
 * SLIMTEST_INET6=1 makes every TCP socket AF_INET6, carrying IPv4 (below).
 *
 * Wire protocol of the servers: right after accept the server writes
 *   HELLO pid=PID peer=IP:PORT local=IP:PORT fails=N\n
 * (its getpeername, getsockname, and how many server-side checks failed so
 * far), then echoes every byte until EOF and closes. accept.c reads one line
 * from the client before its HELLO; forkexec.c reads a command line after.
 * Only libc; C11 with GNU extensions. Header-only: everything is static.
 */
#ifndef SLIMTEST_COMMON_H
#define SLIMTEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IO_MS 5000    /* bound on any single wait for data or readiness */
#define IDLE_MS 15000 /* a server connection idle this long is closed */

typedef struct sockaddr_in sin4;

/* ---- checks ---------------------------------------------------------- */

static atomic_int g_checks, g_fails;
static int g_selftest_inproc; /* server runs in this process (shared counters) */
static int g_listen_port;      /* port of the main listener (server side) */

static inline void check_ok_q(int quiet, const char *name)
{
	atomic_fetch_add(&g_checks, 1);
	if (!quiet)
		printf("ok %s\n", name);
}

/* SLIMTEST_SKIP=name,name,prefix*: failures of these checks are reported as
 * "skip NAME: reason" and do not count (for known, accepted differences). */
static inline int check_skipped(const char *name)
{
	const char *l = getenv("SLIMTEST_SKIP");
	size_t nl = strlen(name);
	while (l && *l) {
		const char *e = strchr(l, ',');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		if (n > 0 && l[n - 1] == '*' ? (nl >= n - 1 && strncmp(name, l, n - 1) == 0)
					     : (n == nl && strncmp(name, l, n) == 0))
			return 1;
		l = e ? e + 1 : NULL;
	}
	return 0;
}

__attribute__((format(printf, 2, 3))) static inline void check_fail(const char *name, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	atomic_fetch_add(&g_checks, 1);
	if (check_skipped(name)) {
		printf("skip %s: %s\n", name, buf);
		return;
	}
	atomic_fetch_add(&g_fails, 1);
	printf("FAIL %s: %s\n", name, buf);
}

/* CHECK(name, cond, fmt, ...): the reason is only formatted on failure. */
#define CHECK(name, cond, ...)                                                                                         \
	do {                                                                                                           \
		if (cond)                                                                                              \
			check_ok_q(0, name);                                                                           \
		else                                                                                                   \
			check_fail(name, __VA_ARGS__);                                                                 \
	} while (0)
/* Same, but a pass prints nothing when quiet (loops); a failure always does. */
#define CHECKQ(quiet, name, cond, ...)                                                                                 \
	do {                                                                                                           \
		if (cond)                                                                                              \
			check_ok_q(quiet, name);                                                                       \
		else                                                                                                   \
			check_fail(name, __VA_ARGS__);                                                                 \
	} while (0)

static inline int finish(void)
{
	int c = atomic_load(&g_checks), f = atomic_load(&g_fails);
	printf("# %d checks, %d failed\n", c, f);
	fflush(stdout);
	return (f == 0 && c > 0) ? 0 : 1;
}

static inline void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "FAIL timeout: alarm fired (something blocked)\n";
	ssize_t r = write(1, msg, sizeof msg - 1);
	(void)r;
	_exit(3);
}

static inline void arm_alarm(unsigned secs)
{
	signal(SIGALRM, on_alarm);
	alarm(secs);
}

static inline double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- AF_INET6 sockets carrying IPv4 (SLIMTEST_INET6=1) ------------------ */

/*
 * With SLIMTEST_INET6=1 in the environment every TCP socket the program
 * makes is an AF_INET6 one that carries IPv4: socket(AF_INET, ...) makes
 * an AF_INET6 socket, bind and connect take the IPv4 address v4-mapped
 * (0.0.0.0 becomes ::, dual-stack), and the server's main listener binds
 * :: instead of ADDR. The programs keep their IPv4 view (sin4): every
 * address the kernel (or the shim) hands back on an AF_INET6 socket must
 * be exactly what the kernel gives for IPv4 on one (28 bytes, AF_INET6,
 * ::ffff:a.b.c.d or ::, flowinfo and scope id 0: check "inet6_name_form"),
 * and is shown to the program as the AF_INET address it stands for, with
 * the usual truncation. Without the variable these wrappers change
 * nothing.
 *
 * SLIMTEST_INET6_PREFIX=P (an IPv6 /96 such as 2001:2::, with
 * SLIMTEST_INET6=1) is the IPv6 overlay: the addresses of 198.18.0.0/15
 * become P with the IPv4 address as the last 32 bits instead of
 * v4-mapped, and must come back in that form (others stay v4-mapped).
 */
static int t6_mode = -1;
static int t6_has_prefix = -1;
static struct in6_addr t6_prefix;

/* The IPv6 overlay /96, if SLIMTEST_INET6_PREFIX names one. */
static inline int t6_prefixed(void)
{
	if (t6_has_prefix < 0) {
		const char *v = getenv("SLIMTEST_INET6_PREFIX");
		t6_has_prefix = v != NULL && inet_pton(AF_INET6, v, &t6_prefix) == 1;
	}
	return t6_has_prefix;
}

/* Whether an IPv4 address (nbo) is the lab's (198.18.0.0/15). */
static inline int t6_lab_addr(uint32_t ip) { return (ntohl(ip) & 0xfffe0000u) == 0xc6120000u; }

static inline int t6_on(void)
{
	if (t6_mode < 0) {
		const char *v = getenv("SLIMTEST_INET6");
		t6_mode = v != NULL && strcmp(v, "1") == 0;
	}
	return t6_mode;
}

/* The family of the program's TCP sockets. */
static inline int t6_domain(void) { return t6_on() ? AF_INET6 : AF_INET; }

static inline int t6_is_inet6(int fd)
{
	int v = -1;
	socklen_t l = sizeof v;
	return t6_on() && getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) == 0 && v == AF_INET6;
}

static inline int t6_socket(int domain, int type, int protocol)
{
	if (t6_on() && domain == AF_INET && (type & 0xf) == SOCK_STREAM)
		domain = AF_INET6;
	return socket(domain, type, protocol);
}

/* An AF_INET address as an AF_INET6 socket takes it: v4-mapped, or ::. */
static inline void t6_map(const struct sockaddr_in *in, struct sockaddr_in6 *in6)
{
	memset(in6, 0, sizeof *in6);
	in6->sin6_family = AF_INET6;
	in6->sin6_port = in->sin_port;
	if (t6_prefixed() && t6_lab_addr(in->sin_addr.s_addr)) {
		memcpy(&in6->sin6_addr, &t6_prefix, 12);
		memcpy(&in6->sin6_addr.s6_addr[12], &in->sin_addr, 4);
	} else if (in->sin_addr.s_addr != htonl(INADDR_ANY)) {
		in6->sin6_addr.s6_addr[10] = 0xff;
		in6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&in6->sin6_addr.s6_addr[12], &in->sin_addr, 4);
	}
}

static inline int t6_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct sockaddr_in6 in6;
	if (sa != NULL && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in) && t6_is_inet6(fd)) {
		t6_map((const struct sockaddr_in *)sa, &in6);
		return bind(fd, (struct sockaddr *)&in6, sizeof in6);
	}
	return bind(fd, sa, len);
}

static inline int t6_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct sockaddr_in6 in6;
	if (sa != NULL && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in) && t6_is_inet6(fd)) {
		t6_map((const struct sockaddr_in *)sa, &in6);
		return connect(fd, (struct sockaddr *)&in6, sizeof in6);
	}
	return connect(fd, sa, len);
}

/*
 * Hands an AF_INET6 socket's address (ss, slen from the kernel) back as
 * the AF_INET one it stands for, into (addr, *len) with truncation, after
 * checking it has the kernel's form.
 */
static inline void t6_unmap(const struct sockaddr_storage *ss, socklen_t slen, struct sockaddr *addr, socklen_t *len)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	int mapped = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr), any = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
	int overlay6 = t6_prefixed() && memcmp(&in6->sin6_addr, &t6_prefix, 12) == 0;
	uint32_t v4;
	memcpy(&v4, &in6->sin6_addr.s6_addr[12], 4);
	if (slen != sizeof *in6 || in6->sin6_family != AF_INET6 || !(mapped || any || overlay6) || in6->sin6_flowinfo != 0 ||
	    in6->sin6_scope_id != 0 || (mapped && t6_prefixed() && t6_lab_addr(v4))) {
		char ip[INET6_ADDRSTRLEN] = "?";
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
		check_fail("inet6_name_form", "len=%u family=%d addr=%s flowinfo=%u scope=%u (want 28, AF_INET6, %s or ::, 0, 0)",
			   (unsigned)slen, in6->sin6_family, ip, (unsigned)in6->sin6_flowinfo, (unsigned)in6->sin6_scope_id,
			   t6_prefixed() ? "the IPv6 overlay address" : "v4-mapped");
	}
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = in6->sin6_port};
	if (mapped || overlay6)
		memcpy(&in.sin_addr, &in6->sin6_addr.s6_addr[12], 4);
	if (addr != NULL && len != NULL) {
		memcpy(addr, &in, *len < sizeof in ? *len : sizeof in);
		*len = sizeof in;
	}
}

static inline int t6_name(int fd, struct sockaddr *addr, socklen_t *len, int peer)
{
	if (addr == NULL || len == NULL || !t6_is_inet6(fd))
		return peer ? getpeername(fd, addr, len) : getsockname(fd, addr, len);
	struct sockaddr_storage ss;
	socklen_t slen = sizeof ss;
	memset(&ss, 0, sizeof ss);
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &slen) : getsockname(fd, (struct sockaddr *)&ss, &slen);
	if (r == 0)
		t6_unmap(&ss, slen, addr, len);
	return r;
}

static inline int t6_getsockname(int fd, struct sockaddr *addr, socklen_t *len) { return t6_name(fd, addr, len, 0); }
static inline int t6_getpeername(int fd, struct sockaddr *addr, socklen_t *len) { return t6_name(fd, addr, len, 1); }

static inline int t6_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	if (addr == NULL || len == NULL || !t6_is_inet6(fd))
		return accept4(fd, addr, len, flags);
	struct sockaddr_storage ss;
	socklen_t slen = sizeof ss;
	memset(&ss, 0, sizeof ss);
	int c = accept4(fd, (struct sockaddr *)&ss, &slen, flags);
	if (c >= 0)
		t6_unmap(&ss, slen, addr, len);
	return c;
}

static inline int t6_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (addr == NULL || len == NULL || !t6_is_inet6(fd))
		return accept(fd, addr, len);
	return t6_accept4(fd, addr, len, 0);
}

#define socket(d, t, p) t6_socket(d, t, p)
#define bind(fd, a, l) t6_bind(fd, a, l)
#define connect(fd, a, l) t6_connect(fd, a, l)
#define accept(fd, a, l) t6_accept(fd, a, l)
#define accept4(fd, a, l, f) t6_accept4(fd, a, l, f)
#define getsockname(fd, a, l) t6_getsockname(fd, a, l)
#define getpeername(fd, a, l) t6_getpeername(fd, a, l)

/* ---- addresses ------------------------------------------------------- */

static inline int mkaddr(sin4 *sa, const char *ip, int port)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

static inline const char *fmt_sa(const sin4 *sa, char *buf, size_t n)
{
	char ip[INET_ADDRSTRLEN] = "?";
	inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof ip);
	if (sa->sin_family != AF_INET)
		snprintf(buf, n, "family%d:%s:%d", sa->sin_family, ip, ntohs(sa->sin_port));
	else
		snprintf(buf, n, "%s:%d", ip, ntohs(sa->sin_port));
	return buf;
}
/* A formatted address valid until the end of the enclosing block. */
#define SA(sa) fmt_sa((sa), (char[64]){0}, 64)

static inline int parse_ipport(const char *s, sin4 *sa)
{
	char ip[64];
	const char *c = strrchr(s, ':');
	if (!c || c == s || (size_t)(c - s) >= sizeof ip)
		return -1;
	memcpy(ip, s, (size_t)(c - s));
	ip[c - s] = 0;
	char *end;
	long p = strtol(c + 1, &end, 10);
	if (*end || p < 0 || p > 65535)
		return -1;
	return mkaddr(sa, ip, (int)p);
}

static inline int sa_eq(const sin4 *a, const sin4 *b)
{
	return a->sin_family == b->sin_family && a->sin_port == b->sin_port &&
	       a->sin_addr.s_addr == b->sin_addr.s_addr;
}

/* getsockname/getpeername into a sin4; fails (errno=EPROTO) unless the
 * kernel reports exactly an AF_INET address of 16 bytes. */
static inline int get_name(int fd, sin4 *sa, int peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	memset(&ss, 0, sizeof ss);
	memset(sa, 0, sizeof *sa);
	int r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len);
	if (r < 0)
		return -1;
	if (len != sizeof(sin4) || ss.ss_family != AF_INET) {
		errno = EPROTO;
		return -1;
	}
	memcpy(sa, &ss, sizeof *sa);
	return 0;
}
static inline int get_local(int fd, sin4 *sa) { return get_name(fd, sa, 0); }
static inline int get_peer(int fd, sin4 *sa) { return get_name(fd, sa, 1); }

static inline void print_addr(const char *side, int fd, const sin4 *acc)
{
	sin4 l, p;
	char a[64] = "?", b[64] = "?", c[64];
	if (get_local(fd, &l) == 0)
		fmt_sa(&l, a, sizeof a);
	if (get_peer(fd, &p) == 0)
		fmt_sa(&p, b, sizeof b);
	if (acc)
		printf("addr local=%s peer=%s side=%s acc=%s\n", a, b, side, fmt_sa(acc, c, sizeof c));
	else
		printf("addr local=%s peer=%s side=%s\n", a, b, side);
}

/* ---- sockets --------------------------------------------------------- */

static inline int sock_port(int fd)
{
	sin4 sa;
	return get_local(fd, &sa) < 0 ? -1 : ntohs(sa.sin_port);
}

static inline int setint(int fd, int level, int opt, int v) { return setsockopt(fd, level, opt, &v, sizeof v); }

static inline int getint(int fd, int level, int opt)
{
	int v = -1;
	socklen_t l = sizeof v;
	if (getsockopt(fd, level, opt, &v, &l) < 0)
		return -1;
	return v;
}

static inline int so_error(int fd)
{
	int e = -1;
	socklen_t l = sizeof e;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
		return -1;
	return e;
}

static inline int is_nonblock(int fd) { return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }
static inline int is_cloexec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

static inline int set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

/* socket + SO_REUSEADDR (+ setup hook) + bind + listen. */
static inline int listen_on(const sin4 *sa, int backlog, int type_flags, void (*setup)(int fd))
{
	int fd = socket(AF_INET, SOCK_STREAM | type_flags, 0);
	if (fd < 0)
		return -1;
	setint(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (setup)
		setup(fd);
	if (bind(fd, (const struct sockaddr *)sa, sizeof *sa) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static inline int listen_ip(const char *ip, int port, int backlog)
{
	sin4 sa;
	if (mkaddr(&sa, ip, port) < 0) {
		errno = EINVAL;
		return -1;
	}
	return listen_on(&sa, backlog, 0, NULL);
}

/* A socket bound to ip:port but not listening: SYNs to it get a RST, so
 * connecting there is refused, and no one else can take the port. */
static inline int reserve_port(const char *ip, int port)
{
	sin4 sa;
	if (mkaddr(&sa, ip, port) < 0)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Blocking connect on a fresh socket; -1 with errno on failure. */
static inline int connect_to(const sin4 *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* ---- bounded I/O (works on blocking and non-blocking fds) -------------- */

/* poll one fd: revents, 0 on timeout, -1 on error. */
static inline int wait_ev(int fd, short events, int ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	double end = now_ms() + ms;
	for (;;) {
		int left = (int)(end - now_ms());
		int r = poll(&p, 1, left < 0 ? 0 : left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r;
		return p.revents;
	}
}

/* Reads exactly n bytes unless EOF comes first: returns the count read (< n
 * only at EOF) or -1 (errno; ETIMEDOUT when nothing came within ms). */
static inline ssize_t read_n(int fd, void *buf, size_t n, int ms)
{
	size_t got = 0;
	while (got < n) {
		int ev = wait_ev(fd, POLLIN, ms);
		if (ev == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (ev < 0)
			return -1;
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static inline ssize_t write_n(int fd, const void *buf, size_t n, int ms)
{
	size_t put = 0;
	while (put < n) {
		ssize_t r = send(fd, (const char *)buf + put, n - put, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			int ev = wait_ev(fd, POLLOUT, ms);
			if (ev == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			if (ev < 0)
				return -1;
			continue;
		}
		if (r < 0)
			return -1;
		put += (size_t)r;
	}
	return (ssize_t)put;
}

/* Reads one line (without the newline), byte by byte so nothing after it is
 * consumed. Returns its length, or -1 (EOF before newline: errno=ECONNRESET). */
static inline ssize_t read_line(int fd, char *buf, size_t cap, int ms)
{
	size_t n = 0;
	while (n + 1 < cap) {
		char c;
		ssize_t r = read_n(fd, &c, 1, ms);
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = 0;
	return (ssize_t)n;
}

/* 1 if the next read reports EOF within ms, 0 if data came instead, -1 error. */
static inline int wait_eof(int fd, int ms)
{
	char c;
	ssize_t r = read_n(fd, &c, 1, ms);
	if (r < 0)
		return -1;
	return r == 0 ? 1 : 0;
}

static inline void fill_pattern(unsigned char *p, size_t n, unsigned salt)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 131u + 7u + salt * 17u) ^ (i >> 8));
}

/* Sends total bytes in chunks and reads each chunk back from the echo
 * server. 0 on success; otherwise -1 and a reason in err. */
static inline int echo_roundtrip(int wfd, int rfd, size_t total, size_t chunk, unsigned salt, char *err, size_t errn)
{
	unsigned char *out = malloc(chunk), *in = malloc(chunk);
	int rc = -1;
	if (!out || !in) {
		snprintf(err, errn, "malloc");
		goto done;
	}
	for (size_t off = 0; off < total; off += chunk) {
		size_t n = total - off < chunk ? total - off : chunk;
		fill_pattern(out, n, salt + (unsigned)(off / chunk));
		if (write_n(wfd, out, n, IO_MS) != (ssize_t)n) {
			snprintf(err, errn, "write at %zu: %s", off, strerror(errno));
			goto done;
		}
		ssize_t r = read_n(rfd, in, n, IO_MS);
		if (r != (ssize_t)n) {
			snprintf(err, errn, "read at %zu: got %zd of %zu (%s)", off, r, n, r < 0 ? strerror(errno) : "EOF");
			goto done;
		}
		if (memcmp(in, out, n) != 0) {
			snprintf(err, errn, "echoed bytes differ at offset %zu", off);
			goto done;
		}
	}
	rc = 0;
done:
	free(out);
	free(in);
	return rc;
}

/* ---- the HELLO line ----------------------------------------------------- */

struct hello {
	int pid;
	sin4 peer, local; /* as the server sees the connection */
	int fails;
};

static inline int send_hello(int fd)
{
	sin4 p, l;
	char line[256];
	int pe = get_peer(fd, &p), le = get_local(fd, &l);
	snprintf(line, sizeof line, "HELLO pid=%d peer=%s local=%s fails=%d\n", (int)getpid(),
		 pe ? "0.0.0.0:0" : SA(&p), le ? "0.0.0.0:0" : SA(&l), atomic_load(&g_fails));
	return write_n(fd, line, strlen(line), IO_MS) < 0 ? -1 : 0;
}

static inline int parse_hello(const char *line, struct hello *h)
{
	char p[64], l[64];
	if (sscanf(line, "HELLO pid=%d peer=%63s local=%63s fails=%d", &h->pid, p, l, &h->fails) != 4)
		return -1;
	if (parse_ipport(p, &h->peer) < 0 || parse_ipport(l, &h->local) < 0)
		return -1;
	return 0;
}

/* Reads and parses the HELLO line; on failure err says why. */
static inline int read_hello(int fd, struct hello *h, char *err, size_t errn)
{
	char line[256];
	memset(h, 0, sizeof *h);
	if (read_line(fd, line, sizeof line, IO_MS) < 0) {
		snprintf(err, errn, "reading HELLO: %s", strerror(errno));
		return -1;
	}
	if (parse_hello(line, h) < 0) {
		snprintf(err, errn, "bad HELLO line \"%.100s\"", line);
		return -1;
	}
	return 0;
}

/* The crosswise name check: what the server sees as its peer is this
 * socket's local address, and the server's local address is this socket's
 * peer. Returns 0, or -1 with err. */
static inline int hello_matches(int fd, const struct hello *h, char *err, size_t errn)
{
	sin4 l, p;
	if (get_local(fd, &l) < 0 || get_peer(fd, &p) < 0) {
		snprintf(err, errn, "getsockname/getpeername: %s", strerror(errno));
		return -1;
	}
	if (!sa_eq(&l, &h->peer)) {
		snprintf(err, errn, "client local %s != server's peer %s", SA(&l), SA(&h->peer));
		return -1;
	}
	if (!sa_eq(&p, &h->local)) {
		snprintf(err, errn, "client peer %s != server's local %s", SA(&p), SA(&h->local));
		return -1;
	}
	return 0;
}

/* Connect, read HELLO, verify names crosswise. Returns fd or -1 (err set). */
static inline int connect_hello(const sin4 *target, struct hello *h, char *err, size_t errn)
{
	int fd = connect_to(target);
	if (fd < 0) {
		snprintf(err, errn, "connect %s: %s", SA(target), strerror(errno));
		return -1;
	}
	if (read_hello(fd, h, err, errn) < 0 || hello_matches(fd, h, err, errn) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Last client check: the server reported no failures of its own. Skipped
 * when the server shares this process's counters (selftest). */
static inline void check_server_clean(const struct hello *h)
{
	if (g_selftest_inproc)
		return;
	CHECK("server_clean", h->fails == 0, "server reported %d failed server-side checks (see its output)",
	      h->fails);
}

/* ---- the generic threaded echo server -------------------------------- */

struct srv_hooks {
	/* How to accept connection number idx; fills *acc and sets *known when
	 * the accept call reported an address. Default: accept with an address. */
	int (*accept_fn)(int lfd, sin4 *acc, int *known, long idx);
	/* Extra server-side checks on a new connection, before HELLO. */
	void (*conn_fn)(int fd, long idx);
};

static atomic_long g_srv_active, g_srv_done;

static inline void echo_loop(int fd)
{
	char buf[65536];
	for (;;) {
		int ev = wait_ev(fd, POLLIN, IDLE_MS);
		if (ev <= 0)
			break;
		ssize_t r = read(fd, buf, sizeof buf);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			break;
		if (write_n(fd, buf, (size_t)r, IO_MS) < 0)
			break;
	}
}

/* Server-side view of an accepted connection: print it, and check that
 * accept's address (if any) is getpeername's. */
static inline void srv_check_accepted(int fd, const sin4 *acc, int known, long idx)
{
	int quiet = idx >= 4;
	if (idx < 32)
		print_addr("server", fd, known ? acc : NULL);
	if (known) {
		sin4 p;
		int r = get_peer(fd, &p);
		CHECKQ(quiet, "srv_accept_addr_is_peer", r == 0 && sa_eq(&p, acc), "accept said %s, getpeername %s (%s)",
		       SA(acc), r ? "error" : SA(&p), r ? strerror(errno) : "mismatch");
	}
}

struct conn_arg {
	int fd;
	long idx;
	int known;
	sin4 acc;
	const struct srv_hooks *h;
};

static void *conn_thread(void *p)
{
	struct conn_arg *a = p;
	srv_check_accepted(a->fd, &a->acc, a->known, a->idx);
	if (a->h && a->h->conn_fn)
		a->h->conn_fn(a->fd, a->idx);
	if (send_hello(a->fd) == 0)
		echo_loop(a->fd);
	close(a->fd);
	free(a);
	atomic_fetch_sub(&g_srv_active, 1);
	atomic_fetch_add(&g_srv_done, 1);
	return NULL;
}

static inline int default_accept(int lfd, sin4 *acc, int *known, long idx)
{
	(void)idx;
	socklen_t len = sizeof *acc;
	int fd = accept(lfd, (struct sockaddr *)acc, &len);
	*known = fd >= 0 && len == sizeof *acc;
	return fd;
}

static inline int spawn_detached(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 * 1024);
	int r = pthread_create(&t, &at, fn, arg);
	pthread_attr_destroy(&at);
	return r;
}

/* Serves until maxconns connections were accepted and finished (forever when
 * maxconns <= 0). A thread per connection. */
static inline void serve(int lfd, long maxconns, const struct srv_hooks *h)
{
	long idx = 0;
	while (maxconns <= 0 || idx < maxconns) {
		struct conn_arg *a = calloc(1, sizeof *a);
		if (!a)
			abort();
		a->h = h;
		a->idx = idx;
		a->fd = (h && h->accept_fn) ? h->accept_fn(lfd, &a->acc, &a->known, idx)
					    : default_accept(lfd, &a->acc, &a->known, idx);
		if (a->fd < 0) {
			int e = errno;
			free(a);
			if (e == EINTR || e == ECONNABORTED || e == EAGAIN)
				continue;
			check_fail("srv_accept", "accept: %s", strerror(e));
			sleep_ms(100);
			continue;
		}
		idx++;
		atomic_fetch_add(&g_srv_active, 1);
		if (spawn_detached(conn_thread, a) != 0) {
			check_fail("srv_thread", "pthread_create failed");
			close(a->fd);
			free(a);
			atomic_fetch_sub(&g_srv_active, 1);
		}
	}
	/* N connections accepted: wait (bounded) for their handlers. */
	for (int i = 0; i < 600 && atomic_load(&g_srv_active) > 0; i++)
		sleep_ms(50);
}

/* Sends fd over a unix socket (SCM_RIGHTS) with len bytes of data in one message: 0, or -1. */
static inline int send_fd_with(int sock, int fd, const void *data, size_t len, int flags)
{
	struct iovec iov = {(void *)data, len};
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	memset(&cm, 0, sizeof cm);
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			     .msg_controllen = sizeof cm.buf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	return sendmsg(sock, &msg, flags) == (ssize_t)len ? 0 : -1;
}

/* One fd over a unix socket, with one byte. */
static inline int send_fd(int sock, int fd)
{
	return send_fd_with(sock, fd, "L", 1, 0);
}

/* The fd send_fd sent (waits up to IO_MS), or -1. */
static inline int recv_fd(int sock)
{
	char byte;
	struct iovec iov = {&byte, 1};
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			     .msg_controllen = sizeof cm.buf};
	if (wait_ev(sock, POLLIN, IO_MS) <= 0 || recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (c == NULL || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

/* ---- main ------------------------------------------------------------ */

struct prog {
	const char *name;
	unsigned alarm_s; /* client / selftest time bound */
	/* Client checks against target; refused is an address nobody listens on. */
	void (*client)(const sin4 *target, const sin4 *refused);
	/* Checks that need only local sockets on ip (run by selftest, and by
	 * server at startup on separate ephemeral ports). May be NULL. */
	void (*local)(const char *ip);
	/* Server loop; NULL means serve(lfd, maxconns, hooks). */
	void (*server)(int lfd, long maxconns);
	const struct srv_hooks *hooks;
	/* Called on the main listener before bind (options to set). */
	void (*setup_listener)(int fd);
	/* selftest: run the server in a forked process instead of a thread. */
	int selftest_fork_server;
};

struct srv_thread_arg {
	const struct prog *p;
	int lfd;
};

static void *srv_thread(void *v)
{
	struct srv_thread_arg *a = v;
	if (a->p->server)
		a->p->server(a->lfd, -1);
	else
		serve(a->lfd, -1, a->p->hooks);
	return NULL;
}

static inline int usage(const char *name)
{
	fprintf(stderr,
		"usage: %s server ADDR PORT [N]\n"
		"       %s client ADDR PORT [REFUSED_PORT]\n"
		"       %s selftest ADDR\n",
		name, name, name);
	return 2;
}

static inline int prog_main(int argc, char **argv, const struct prog *p)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 3)
		return usage(p->name);
	const char *mode = argv[1], *ip = argv[2];
	sin4 tmp;
	if (mkaddr(&tmp, ip, 0) < 0) {
		fprintf(stderr, "%s: bad IPv4 address %s\n", p->name, ip);
		return 2;
	}
	if (strcmp(mode, "server") == 0) {
		if (argc < 4)
			return usage(p->name);
		int port = atoi(argv[3]);
		long maxconns = argc > 4 ? atol(argv[4]) : 0;
		sin4 sa;
		mkaddr(&sa, t6_on() ? "0.0.0.0" : ip, port); /* SLIMTEST_INET6: on :: */
		int lfd = listen_on(&sa, 128, 0, p->setup_listener);
		if (lfd < 0) {
			fprintf(stderr, "%s: listen %s:%d: %s\n", p->name, ip, port, strerror(errno));
			return 2;
		}
		g_listen_port = port;
		int rfd = reserve_port(ip, port + 1);
		printf("# %s listening on %s:%d%s\n", p->name, ip, port,
		       rfd < 0 ? " (could not reserve PORT+1 as refused port)" : "");
		if (p->local)
			p->local(ip);
		if (p->server)
			p->server(lfd, maxconns);
		else
			serve(lfd, maxconns, p->hooks);
		return finish();
	}
	if (strcmp(mode, "client") == 0) {
		if (argc < 4)
			return usage(p->name);
		int port = atoi(argv[3]);
		int rport = argc > 4 ? atoi(argv[4]) : port + 1;
		sin4 target, refused;
		mkaddr(&target, ip, port);
		mkaddr(&refused, ip, rport);
		arm_alarm(p->alarm_s);
		p->client(&target, &refused);
		return finish();
	}
	if (strcmp(mode, "selftest") == 0) {
		arm_alarm(p->alarm_s);
		sin4 sa;
		mkaddr(&sa, t6_on() ? "0.0.0.0" : ip, 0); /* SLIMTEST_INET6: on :: */
		int lfd = listen_on(&sa, 128, SOCK_CLOEXEC, p->setup_listener);
		int rfd = reserve_port(ip, 0);
		if (lfd < 0 || rfd < 0) {
			fprintf(stderr, "%s: listen/reserve on %s: %s\n", p->name, ip, strerror(errno));
			return 2;
		}
		g_listen_port = sock_port(lfd);
		sin4 target, refused;
		mkaddr(&target, ip, g_listen_port);
		mkaddr(&refused, ip, sock_port(rfd));
		printf("# %s selftest server %s refused %s\n", p->name, SA(&target), SA(&refused));
		if (p->local)
			p->local(ip);
		pid_t child = -1;
		if (p->selftest_fork_server) {
			fflush(stdout);
			child = fork();
			if (child == 0) {
				prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test */
				signal(SIGALRM, SIG_DFL);
				alarm(0);
				if (p->server)
					p->server(lfd, -1);
				else
					serve(lfd, -1, p->hooks);
				_exit(finish());
			}
			close(lfd);
		} else {
			g_selftest_inproc = 1;
			static struct srv_thread_arg a;
			a.p = p;
			a.lfd = lfd;
			if (spawn_detached(srv_thread, &a) != 0) {
				fprintf(stderr, "%s: pthread_create failed\n", p->name);
				return 2;
			}
		}
		p->client(&target, &refused);
		if (child > 0) {
			kill(child, SIGTERM);
			waitpid(child, NULL, 0);
		}
		return finish();
	}
	return usage(p->name);
}

#endif
