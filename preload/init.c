/*
 * libslim: the shim slim preloads into container processes (LD_PRELOAD).
 *
 * This file: the constructor, configuration from the environment, the real
 * libc entry points, fork handling and logging. See shim.h for the map of
 * the other files and docs/datapath.md for the design.
 *
 * The shim is inert (every wrapper is a straight call to libc, behind one
 * pointer test) when SLIM_ROUTER_SOCK is unset or unusable.
 */
#include "shim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Read by slim and by tests to tell which shim a process loaded. */
SLIM_EXPORT const char *slim_shim_version = "slim-shim 1 (connect/accept acceleration, protocol v1)";

struct slim_real_fns slim_real;
struct slim_config slim_cfg;

static pthread_key_t thread_key;

#define RESOLVE(name)                                                         \
	__atomic_store_n(&slim_real.name, (__typeof__(slim_real.name))dlsym(RTLD_NEXT, #name), \
			 __ATOMIC_RELAXED)

void slim_resolve(void)
{
	RESOLVE(socket);
	RESOLVE(bind);
	RESOLVE(connect);
	RESOLVE(listen);
	RESOLVE(accept);
	RESOLVE(accept4);
	RESOLVE(getsockname);
	RESOLVE(getpeername);
	RESOLVE(setsockopt);
	RESOLVE(close);
	RESOLVE(dup);
	RESOLVE(dup2);
	RESOLVE(dup3);
	RESOLVE(fcntl);
	RESOLVE(fcntl64);
	RESOLVE(epoll_ctl);
	RESOLVE(poll);
	RESOLVE(ppoll);
	RESOLVE(select);
	RESOLVE(pselect);
	RESOLVE(close_range);
	RESOLVE(closefrom);
	RESOLVE(ioctl);
	RESOLVE(execve);
	RESOLVE(execvpe);
	RESOLVE(fexecve);
	RESOLVE(posix_spawn);
	RESOLVE(posix_spawnp);
	/* fcntl64 is an alias of fcntl on x86-64; keep both usable. */
	if (slim_real.fcntl64 == NULL)
		slim_real.fcntl64 = slim_real.fcntl;
}

int64_t slim_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- logging ------------------------------------------------------------ */

struct line {
	char buf[512];
	size_t n;
};

static void put(struct line *l, const char *s, size_t len)
{
	size_t room = sizeof l->buf - 1 - l->n; /* keep one byte for '\n' */
	if (len > room)
		len = room;
	memcpy(l->buf + l->n, s, len);
	l->n += len;
}

static void put_str(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void put_num(struct line *l, unsigned long v, unsigned int base)
{
	char d[24];
	char *p = d + sizeof d;
	do {
		*--p = "0123456789abcdef"[v % base];
		v /= base;
	} while (v > 0);
	put(l, p, (size_t)(d + sizeof d - p));
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

void slim_log(const char *fmt, ...)
{
	int saved = errno;
	struct line l = {.n = 0};
	va_list ap;
	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%' || f[1] == '\0') {
			put(&l, f, 1);
			continue;
		}
		switch (*++f) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			put_str(&l, s ? s : "(null)");
			break;
		}
		case 'd': {
			int v = va_arg(ap, int);
			if (v < 0) {
				put(&l, "-", 1);
				put_num(&l, -(unsigned long)(long)v, 10);
			} else {
				put_num(&l, (unsigned long)v, 10);
			}
			break;
		}
		case 'u':
			put_num(&l, va_arg(ap, unsigned int), 10);
			break;
		case 'x':
			put_num(&l, va_arg(ap, unsigned int), 16);
			break;
		case 'A': {
			uint32_t a = va_arg(ap, uint32_t);
			const uint8_t *b = (const uint8_t *)&a;
			for (int i = 0; i < 4; i++) {
				if (i)
					put(&l, ".", 1);
				put_num(&l, b[i], 10);
			}
			break;
		}
		case 'P': {
			unsigned int p = va_arg(ap, unsigned int);
			put_num(&l, ((p & 0xff) << 8) | ((p >> 8) & 0xff), 10);
			break;
		}
		default:
			put(&l, f - 1, 2);
			break;
		}
	}
	va_end(ap);
	l.buf[l.n++] = '\n';
	write_all(STDERR_FILENO, l.buf, l.n);
	errno = saved;
}

const char *slim_errname(int err)
{
	switch (err) {
	case ENOENT: return "no such file or directory";
	case ECONNREFUSED: return "connection refused";
	case ETIMEDOUT: return "timed out";
	case EACCES: return "permission denied";
	case EPERM: return "operation not permitted";
	case EAGAIN: return "resource temporarily unavailable";
	case ECONNRESET: return "connection reset";
	case EPIPE: return "broken pipe";
	case EPROTO: return "protocol error";
	case EMFILE: return "too many open files";
	case ENOTSOCK: return "not a socket";
	case EBADMSG: return "bad message";
	case EOPNOTSUPP: return "operation not supported";
	default: return NULL;
	}
}

static atomic_bool warned;

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

/* ---- fork --------------------------------------------------------------- */

/*
 * The child drops what it cannot share with its parent: the pool (a pool
 * socket must be used by one process) and the router connections (replies
 * would interleave). No allocation here; only close(2) and stores.
 */
static void atfork_child(void)
{
	slim_table_atfork_child();
	slim_pool_atfork_child();
	slim_router_atfork_child();
	slim_stats_atfork_child();
}

/* ---- constructor -------------------------------------------------------- */

static int env_int(const char *name, int def, int lo, int hi)
{
	const char *s = getenv(name);
	if (s == NULL || *s == '\0')
		return def;
	long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return def;
		v = v * 10 + (*s - '0');
		if (v > hi)
			return hi;
	}
	return v < lo ? lo : (int)v;
}

static bool configure(void)
{
	const char *sock = getenv("SLIM_ROUTER_SOCK");
	if (sock == NULL || *sock == '\0')
		return false;
	size_t n = strlen(sock);
	if (n >= sizeof slim_cfg.router_path) {
		slim_log("slim: SLIM_ROUTER_SOCK is too long for a unix socket path; using the overlay");
		return false;
	}
	memcpy(slim_cfg.router_path, sock, n + 1);

	/* DIR/directory, DIR = dirname of the socket path. */
	const char *slash = strrchr(sock, '/');
	size_t dlen = slash == NULL ? 0 : (size_t)(slash - sock);
	static const char name[] = "directory";
	if (slash == NULL) {
		memcpy(slim_cfg.dir_path, name, sizeof name);
	} else {
		if (dlen == 0)
			dlen = 1; /* "/router.sock" → "/directory" */
		memcpy(slim_cfg.dir_path, sock, dlen);
		if (slim_cfg.dir_path[dlen - 1] != '/')
			slim_cfg.dir_path[dlen++] = '/';
		memcpy(slim_cfg.dir_path + dlen, name, sizeof name);
	}
	slim_cfg.timeout_ms = env_int("SLIM_ROUTER_TIMEOUT_MS", 500, 1, 600000);
	return true;
}

__attribute__((constructor)) static void slim_shim_init(void)
{
	int saved = errno;
	slim_resolve();
	const char *debug = getenv("SLIM_DEBUG");
	slim_cfg.debug = debug != NULL && strcmp(debug, "1") == 0;
	if (slim_cfg.debug)
		slim_log("slim: shim loaded (pid %d)", (int)getpid());

	bool active = configure() && pthread_key_create(&thread_key, slim_router_thread_exit) == 0 &&
		      pthread_atfork(NULL, NULL, atfork_child) == 0 && slim_table_init() == 0;
	if (active)
		slim_debug("slim: router %s, directory %s, hidden fds from %d",
			   slim_cfg.router_path, slim_cfg.dir_path, slim_hidden_base);
	slim_exec_restore(active);
	errno = saved;
}

void slim_thread_register(int slot)
{
	pthread_setspecific(thread_key, (void *)(intptr_t)(slot + 1));
}
