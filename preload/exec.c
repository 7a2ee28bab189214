/*
 * exec: the shim's table dies with the image, but accelerated sockets
 * survive it (inetd-style handlers, servers that re-exec themselves). The
 * exec family and posix_spawn add SLIM_FDS to the new image's environment,
 * describing every accelerated fd that survives the exec (no FD_CLOEXEC):
 *
 *   SLIM_FDS=ENTRY[;ENTRY]...
 *   c:FD:COOKIE:LIP:LPORT:PIP:PPORT   connection: its overlay local and peer
 *                                     address (the host socket is at FD)
 *   l:FD:COOKIE:HIDDEN:HCOOKIE:OWNER  merged listener: the app's listener at
 *                                     FD, the host listener at HIDDEN, asked
 *                                     for by process OWNER (0: unknown)
 *
 * FD, HIDDEN, OWNER and ports are decimal, COOKIEs (SO_COOKIE, the kernel's
 * unique id of a socket) hexadecimal, addresses dotted quads. The host
 * listener survives exec exactly when the app's listener does (see
 * slim_listener_sync_cloexec). The new image's constructor parses the
 * variable strictly (a malformed entry is ignored), checks each fd by its
 * cookie, restores the table and removes SLIM_FDS from its environment.
 *
 * glibc's system() and popen() spawn their child internally, past the
 * exported exec family and posix_spawn, with the environment as it is: for
 * them the same text goes into a memfd, placed at the last fd number below
 * the soft RLIMIT_NOFILE (not close-on-exec) for the duration of the call;
 * the new image's constructor reads and closes it when it holds
 * "SLIM_FDS=...". Two threads calling system() at once: the second goes
 * without (the number is taken), and a child may miss the state if the
 * other call ends first; such a child works as before (no state).
 *
 * execve is async-signal-safe and may run in a vfork child: no malloc, no
 * lock waited for. The new environment is built on the stack; only an
 * environment of more than ENV_STACK entries or more than VALUE_STACK
 * bytes of state needs mmap (then, in a vfork child, the mapping is left
 * behind in the parent). If anything fails, the exec goes ahead without
 * SLIM_FDS: the shim never makes an exec fail.
 */
#include "shim.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

#define VAR "SLIM_FDS="
#define VAR_LEN (sizeof VAR - 1)
#define ENTRY_MAX 96   /* longest entry, with its separator */
#define VALUE_STACK 2048
#define ENV_STACK 256
#define LOCK_SPINS 1000

/* ---- encoding ------------------------------------------------------------ */

struct out {
	char *p, *end;
};

static void out_ch(struct out *o, char c)
{
	if (o->p < o->end)
		*o->p++ = c;
}

static void out_num(struct out *o, uint64_t v, unsigned int base)
{
	char d[24];
	int n = 0;
	do {
		d[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v > 0);
	while (n > 0)
		out_ch(o, d[--n]);
}

static void out_addr(struct out *o, uint32_t ip, uint16_t port)
{
	const uint8_t *b = (const uint8_t *)&ip;
	for (int i = 0; i < 4; i++) {
		if (i)
			out_ch(o, '.');
		out_num(o, b[i], 10);
	}
	out_ch(o, ':');
	out_num(o, ntohs(port), 10);
}

static bool cookie_of(int fd, uint64_t *cookie)
{
	socklen_t len = sizeof *cookie;
	return getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len) == 0 && len == sizeof *cookie;
}

static bool survives_exec(int fd)
{
	int f = REAL(fcntl)(fd, F_GETFD);
	return f >= 0 && !(f & FD_CLOEXEC);
}

static void out_field(struct out *o, uint64_t v, unsigned int base)
{
	out_ch(o, ':');
	out_num(o, v, base);
}

/* c:FD:COOKIE:LIP:LPORT:PIP:PPORT[:6]; (:6: shown as IPv6 overlay addresses) */
static void out_conn_entry(struct out *o, int fd, uint64_t cookie, const struct slim_conn *c)
{
	out_ch(o, 'c');
	out_field(o, (unsigned int)fd, 10);
	out_field(o, cookie, 16);
	out_ch(o, ':');
	out_addr(o, c->lip, c->lport);
	out_ch(o, ':');
	out_addr(o, c->pip, c->pport);
	if (c->v6 == SLIM_FORM_OV6) {
		out_ch(o, ':');
		out_ch(o, '6');
	}
	out_ch(o, ';');
}

/* l:FD:COOKIE:HIDDEN:HCOOKIE:OWNER; */
static void out_listener_entry(struct out *o, int fd, uint64_t cookie, int h, uint64_t hcookie,
			       pid_t owner)
{
	out_ch(o, 'l');
	out_field(o, (unsigned int)fd, 10);
	out_field(o, cookie, 16);
	out_field(o, (unsigned int)h, 10);
	out_field(o, hcookie, 16);
	out_field(o, owner > 0 ? (unsigned int)owner : 0, 10);
	out_ch(o, ';');
}

static bool accelerated_kind(int kind)
{
	return kind == SLIM_CONN || kind == SLIM_LISTENER;
}

/* One entry for fd, if it is accelerated and survives exec. */
static void describe_fd(struct out *o, int fd)
{
	struct slim_fd *e = &slim_table[fd];
	if (!accelerated_kind(atomic_load_explicit(&e->kind, memory_order_relaxed)) ||
	    !slim_trylock(fd, LOCK_SPINS))
		return;
	int kind = atomic_load_explicit(&e->kind, memory_order_relaxed);
	struct slim_conn c = e->u.c;
	struct slim_listener *l = e->u.l;
	slim_unlock(fd);
	uint64_t cookie, hcookie;
	if (!accelerated_kind(kind) || !survives_exec(fd) || !cookie_of(fd, &cookie) ||
	    (size_t)(o->end - o->p) < ENTRY_MAX)
		return;
	if (kind == SLIM_CONN) {
		if (c.lport != 0 && c.pport != 0) /* else not connected yet */
			out_conn_entry(o, fd, cookie, &c);
		return;
	}
	int h = l == NULL ? -1 : atomic_load_explicit(&l->hidden, memory_order_relaxed);
	int st = l == NULL ? SLIM_L_OFF : atomic_load_explicit(&l->state, memory_order_relaxed);
	if (h < 0 || (st != SLIM_L_PENDING && st != SLIM_L_ARMED) || !cookie_of(h, &hcookie))
		return;
	/* Normally so already; an exec that keeps the app fd keeps the pair. */
	slim_set_cloexec(h, false);
	out_listener_entry(o, fd, cookie, h, hcookie, l->owner);
}

/* Accelerated fds that survive exec: SLIM_FDS's entries, at most. */
static size_t count_survivors(void)
{
	size_t n = 0;
	SLIM_FOR_EACH_USED(fd) {
		int kind = atomic_load_explicit(&slim_table[fd].kind, memory_order_relaxed);
		if (accelerated_kind(kind) && survives_exec(fd))
			n++;
	}
	return n;
}

/* Writes "SLIM_FDS=ENTRIES" into o; false if no fd needs describing. */
static bool describe_all(struct out *o)
{
	char *start = o->p;
	for (size_t i = 0; i < VAR_LEN; i++)
		out_ch(o, VAR[i]);
	char *entries = o->p;
	SLIM_FOR_EACH_USED(fd) {
		describe_fd(o, fd);
	}
	if (o->p == entries || o->p >= o->end) {
		o->p = start;
		return false;
	}
	o->p[-1] = '\0'; /* the last ';' */
	return true;
}

/* ---- the new environment -------------------------------------------------- */

/* Scratch memory: the caller's stack buffer, or an mmap'd one. */
struct scratch {
	void *p;
	size_t mapped;
};

static void *scratch_get(struct scratch *s, void *stack, size_t stack_size, size_t size)
{
	s->mapped = 0;
	if (size <= stack_size)
		return s->p = stack;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return s->p = NULL;
	s->mapped = size;
	return s->p = p;
}

static void scratch_put(struct scratch *s)
{
	if (s->mapped)
		munmap(s->p, s->mapped);
}

static bool is_state_var(const char *s)
{
	return strncmp(s, VAR, VAR_LEN) == 0;
}

static bool has_state_var(char *const envp[])
{
	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
		if (is_state_var(envp[i]))
			return true;
	return false;
}

/* What to call once the environment is ready. */
enum how { HOW_EXECVE, HOW_EXECVPE, HOW_FEXECVE, HOW_SPAWN, HOW_SPAWNP };

struct call {
	enum how how;
	const char *path;
	int fd;
	char *const *argv;
	pid_t *pid;
	const posix_spawn_file_actions_t *actions;
	const posix_spawnattr_t *attr;
};

static int call_real(const struct call *c, char *const envp[])
{
	switch (c->how) {
	case HOW_EXECVE:
		return REAL(execve)(c->path, c->argv, envp);
	case HOW_EXECVPE:
		return REAL(execvpe)(c->path, c->argv, envp);
	case HOW_FEXECVE:
		return REAL(fexecve)(c->fd, c->argv, envp);
	case HOW_SPAWN:
		return REAL(posix_spawn)(c->pid, c->path, c->actions, c->attr, c->argv, envp);
	case HOW_SPAWNP:
		return REAL(posix_spawnp)(c->pid, c->path, c->actions, c->attr, c->argv, envp);
	}
	return -1;
}

/*
 * envp without any SLIM_FDS (and without the entry keep replaces), plus
 * var (if not NULL) and keep's entries, into out (n + 2 + SLIM_KEEP_MAX
 * slots).
 */
static void build_env(char **out, char *const envp[], char *var, const struct slim_keep *keep)
{
	size_t k = 0;
	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
		if (!is_state_var(envp[i]) && envp[i] != keep->drop)
			out[k++] = envp[i];
	if (var != NULL)
		out[k++] = var;
	for (size_t i = 0; i < keep->n; i++)
		out[k++] = keep->add[i];
	out[k] = NULL;
}

static size_t env_count(char *const envp[])
{
	size_t n = 0;
	while (envp != NULL && envp[n] != NULL)
		n++;
	return n;
}

/*
 * Calls c with envp plus this image's SLIM_FDS (and without a stale one),
 * and the shim's own variables if envp lost them (keepenv.c). The common
 * case (nothing accelerated, nothing stale, the environment handed on)
 * passes envp as is.
 */
static int call_with_state(const struct call *c, char *const envp[])
{
	if (atomic_load_explicit(&slim_table, memory_order_acquire) == NULL)
		return call_real(c, envp);
	int saved = errno;
	size_t n = count_survivors();
	struct slim_keep keep;
	bool rebuilt = slim_keepenv_plan(&keep, envp);
	if (n == 0 && !rebuilt && !has_state_var(envp))
		return call_real(c, envp);

	char value_stack[VALUE_STACK];
	char *env_stack[ENV_STACK];
	struct scratch vs, es;
	char *value = scratch_get(&vs, value_stack, sizeof value_stack, VAR_LEN + n * ENTRY_MAX + 1);
	size_t slots = env_count(envp) + 2 + SLIM_KEEP_MAX;
	char **env = scratch_get(&es, env_stack, sizeof env_stack, slots * sizeof(char *));
	int r;
	if (value == NULL || env == NULL) {
		r = call_real(c, envp); /* no room: exec without the state */
	} else {
		struct out o = {value, value + VAR_LEN + n * ENTRY_MAX + 1};
		bool described = n > 0 && describe_all(&o);
		build_env(env, envp, described ? value : NULL, &keep);
		errno = saved;
		r = call_real(c, env);
	}
	int err = errno;
	scratch_put(&vs);
	scratch_put(&es);
	errno = err;
	return r;
}

/* ---- the exec family -------------------------------------------------------- */

SLIM_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	struct call c = {.how = HOW_EXECVE, .path = path, .argv = argv};
	return call_with_state(&c, envp);
}

SLIM_EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

SLIM_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	struct call c = {.how = HOW_EXECVPE, .path = file, .argv = argv};
	return call_with_state(&c, envp);
}

SLIM_EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

SLIM_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	struct call c = {.how = HOW_FEXECVE, .fd = fd, .argv = argv};
	return call_with_state(&c, envp);
}

/* Counts execl's arguments after arg, up to the terminating NULL. */
static size_t count_args(va_list ap)
{
	size_t n = 0;
	while (va_arg(ap, const char *) != NULL)
		n++;
	return n;
}

/*
 * execl, execlp, execle: the arguments become an argv on the stack, as
 * glibc does (a VLA: no malloc in an async-signal-safe call).
 */
#define ARGV_FROM_VARARGS(argv, arg, ap, last)                                 \
	va_start(ap, last);                                                     \
	size_t argc_ = count_args(ap) + 1;                                      \
	va_end(ap);                                                             \
	char *argv[argc_ + 1];                                                  \
	argv[0] = (char *)arg;                                                  \
	va_start(ap, last);                                                     \
	for (size_t i_ = 1; i_ <= argc_; i_++)                                  \
		argv[i_] = va_arg(ap, char *);

SLIM_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	ARGV_FROM_VARARGS(argv, arg, ap, arg);
	va_end(ap);
	return execve(path, argv, environ);
}

SLIM_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	ARGV_FROM_VARARGS(argv, arg, ap, arg);
	va_end(ap);
	return execvpe(file, argv, environ);
}

SLIM_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	ARGV_FROM_VARARGS(argv, arg, ap, arg);
	char *const *envp = va_arg(ap, char *const *); /* after the NULL */
	va_end(ap);
	return execve(path, argv, envp);
}

SLIM_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct call c = {.how = HOW_SPAWN, .path = path, .argv = argv, .pid = pid,
			 .actions = fa, .attr = attr};
	return call_with_state(&c, envp);
}

SLIM_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			     const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct call c = {.how = HOW_SPAWNP, .path = file, .argv = argv, .pid = pid,
			 .actions = fa, .attr = attr};
	return call_with_state(&c, envp);
}

/* ---- system() and popen() ------------------------------------------------------ */

#define HANDOFF_MAX (1 << 20)

/* Where the state waits for a system() or popen() child: -1 if nowhere. */
static int handoff_number(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 64 || rl.rlim_cur > 0x7fffffff)
		return -1;
	return (int)rl.rlim_cur - 1;
}

/* Puts this image's state at the handoff number; returns that fd, or -1. */
static int handoff_begin(void)
{
	if (atomic_load_explicit(&slim_table, memory_order_acquire) == NULL)
		return -1;
	int saved = errno;
	size_t n = count_survivors();
	int at = n > 0 ? handoff_number() : -1;
	if (at < 0)
		return -1;
	char value_stack[VALUE_STACK];
	struct scratch vs;
	size_t cap = VAR_LEN + n * ENTRY_MAX + 1;
	char *value = scratch_get(&vs, value_stack, sizeof value_stack, cap);
	int fd = -1;
	struct out o = {value, value + cap};
	if (value != NULL && describe_all(&o)) {
		size_t len = strlen(value) + 1;
		int m = memfd_create("slim-fds", MFD_CLOEXEC);
		if (m >= 0 && write(m, value, len) == (ssize_t)len)
			fd = REAL(fcntl)(m, F_DUPFD, at); /* exactly at, or fails */
		if (m >= 0)
			REAL(close)(m);
		if (fd >= 0 && fd != at) {
			REAL(close)(fd);
			fd = -1;
		}
	}
	scratch_put(&vs);
	errno = saved;
	return fd;
}

static void handoff_end(int fd)
{
	if (fd < 0)
		return;
	int saved = errno;
	REAL(close)(fd);
	errno = saved;
}

/*
 * The state a system() or popen() parent left at the handoff number:
 * mapped ("SLIM_FDS=..." and a NUL), the fd closed. NULL if there is none.
 */
static const char *handoff_take(size_t *len)
{
	int at = handoff_number();
	struct stat st;
	char magic[VAR_LEN];
	if (at < 0 || fstat(at, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= (off_t)VAR_LEN ||
	    st.st_size > HANDOFF_MAX || pread(at, magic, VAR_LEN, 0) != (ssize_t)VAR_LEN ||
	    memcmp(magic, VAR, VAR_LEN) != 0)
		return NULL;
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, at, 0);
	REAL(close)(at);
	if (p == MAP_FAILED)
		return NULL;
	*len = (size_t)st.st_size;
	if (((const char *)p)[*len - 1] != '\0') {
		munmap(p, *len);
		return NULL;
	}
	return p;
}

SLIM_EXPORT int system(const char *command)
{
	int h = command != NULL ? handoff_begin() : -1;
	int r = REAL(system)(command);
	handoff_end(h);
	return r;
}

/* FILE *popen(...): the shim has no stdio; the pointer passes through. */
SLIM_EXPORT void *popen(const char *command, const char *type)
{
	int h = handoff_begin();
	void *f = REAL(popen)(command, type);
	handoff_end(h);
	return f;
}

/* ---- the new image: parsing and restoring -------------------------------------- */

struct parser {
	const char *p;
};

static bool parse_char(struct parser *ps, char c)
{
	if (*ps->p != c)
		return false;
	ps->p++;
	return true;
}

/* An unsigned number in base 10 or 16, at most max, at least one digit. */
static bool parse_num(struct parser *ps, unsigned int base, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;
	const char *start = ps->p;
	for (;; ps->p++) {
		char ch = *ps->p;
		unsigned int d;
		if (ch >= '0' && ch <= '9')
			d = (unsigned int)(ch - '0');
		else if (base == 16 && ch >= 'a' && ch <= 'f')
			d = (unsigned int)(ch - 'a' + 10);
		else
			break;
		if (x > (max - d) / base)
			return false;
		x = x * base + d;
	}
	*v = x;
	return ps->p > start && ps->p - start <= 20;
}

static bool parse_fd(struct parser *ps, int *fd)
{
	uint64_t v;
	if (!parse_num(ps, 10, 0x7fffffff, &v))
		return false;
	*fd = (int)v;
	return true;
}

/* A.B.C.D:PORT, port 1-65535; ip and port in network byte order. */
static bool parse_addr(struct parser *ps, uint32_t *ip, uint16_t *port)
{
	uint8_t b[4];
	uint64_t v;
	for (int i = 0; i < 4; i++) {
		if ((i > 0 && !parse_char(ps, '.')) || !parse_num(ps, 10, 255, &v))
			return false;
		b[i] = (uint8_t)v;
	}
	if (!parse_char(ps, ':') || !parse_num(ps, 10, 65535, &v) || v == 0)
		return false;
	memcpy(ip, b, 4);
	*port = htons((uint16_t)v);
	return true;
}

struct entry {
	char kind; /* 'c' or 'l' */
	int fd, hidden;
	pid_t owner; /* 'l': who asked for it, 0 if unknown */
	uint64_t cookie, hcookie;
	struct slim_conn conn;
};

/* ":OWNER", or nothing (an older shim's entry): owner 0. */
static bool parse_owner(struct parser *ps, pid_t *owner)
{
	*owner = 0;
	if (*ps->p != ':')
		return true;
	ps->p++;
	int v;
	if (!parse_fd(ps, &v))
		return false;
	*owner = (pid_t)v;
	return true;
}

/* One entry up to ';' or the end; false if malformed. */
static bool parse_entry(struct parser *ps, struct entry *en)
{
	en->kind = *ps->p;
	if (en->kind != 'c' && en->kind != 'l')
		return false;
	ps->p++;
	if (!parse_char(ps, ':') || !parse_fd(ps, &en->fd) || !parse_char(ps, ':') ||
	    !parse_num(ps, 16, UINT64_MAX, &en->cookie) || !parse_char(ps, ':'))
		return false;
	bool ok;
	if (en->kind == 'c') {
		ok = parse_addr(ps, &en->conn.lip, &en->conn.lport) && parse_char(ps, ':') &&
		     parse_addr(ps, &en->conn.pip, &en->conn.pport);
		en->conn.v6 = SLIM_FORM_V4;
		if (ok && *ps->p == ':') { /* ":6": IPv6 overlay addresses */
			ok = ps->p[1] == '6';
			if (ok)
				ps->p += 2;
			en->conn.v6 = SLIM_FORM_OV6;
		}
	} else
		ok = parse_fd(ps, &en->hidden) && parse_char(ps, ':') &&
		     parse_num(ps, 16, UINT64_MAX, &en->hcookie) && parse_owner(ps, &en->owner);
	return ok && (*ps->p == ';' || *ps->p == '\0');
}

static int sockopt_int(int fd, int name)
{
	int v = -1;
	socklen_t len = sizeof v;
	if (getsockopt(fd, SOL_SOCKET, name, &v, &len) != 0)
		return -1;
	return v;
}

/*
 * fd is the very socket described (same cookie), a TCP one of AF_INET or
 * AF_INET6 (which *v6 says, if asked).
 */
static bool same_socket(int fd, uint64_t cookie, bool listening, bool *v6)
{
	uint64_t now;
	int domain;
	bool ok = fd >= 0 && cookie_of(fd, &now) && now == cookie &&
		  ((domain = sockopt_int(fd, SO_DOMAIN)) == AF_INET || domain == AF_INET6) &&
		  sockopt_int(fd, SO_TYPE) == SOCK_STREAM &&
		  sockopt_int(fd, SO_ACCEPTCONN) == (listening ? 1 : 0);
	if (ok && v6 != NULL)
		*v6 = domain == AF_INET6;
	return ok;
}

/* A listening socket's backlog (tcp_info has it for listeners). */
static int backlog_of(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_sacked > 0)
		return (int)ti.tcpi_sacked;
	return 128;
}

static void restore_listener(const struct entry *en)
{
	bool v6 = false;
	bool app_ok = same_socket(en->fd, en->cookie, true, &v6);
	bool hidden_ok = same_socket(en->hidden, en->hcookie, true, NULL);
	if (!hidden_ok)
		return;
	if (!app_ok || en->fd == en->hidden || slim_ent(en->fd) == NULL ||
	    slim_ent(en->hidden) == NULL) {
		/* The app's half is gone: nobody would accept from ours. */
		REAL(close)(en->hidden);
		return;
	}
	struct slim_inaddr a;
	uint32_t ip = 0;
	uint16_t port = 0;
	a.len = sizeof a.u;
	if (REAL(getsockname)(en->fd, &a.u.sa, &a.len) == 0 &&
	    !slim_inaddr_v4(&a.u.sa, a.len, &ip, &port) && a.u.sa.sa_family == AF_INET6)
		/* Bound to its IPv6 overlay address: the last 32 bits are the IPv4 one. */
		memcpy(&ip, &a.u.in6.sin6_addr.s6_addr[12], 4);
	/*
	 * HELLO now, while the router can be reached. An image given a
	 * listener is a server's child that accepts from it (Postfix's smtpd,
	 * Dovecot's imap-login), and it often chroots before its first accept,
	 * out of the router's reach: each login process warned "router
	 * unreachable". Its accepts need HELLO's answer (secure mode or not),
	 * its first one arms the listener (PUBLISH: the thread keeps this
	 * connection for it), and a listener on all addresses is the
	 * container's overlay address, which PUBLISH names (0.0.0.0 was
	 * refused) and a connect of the process's own finds it by.
	 */
	struct slim_self self;
	if (slim_hello(&self) && ip == htonl(INADDR_ANY))
		ip = self.ip;
	struct slim_listener *l = slim_listener_new(en->hidden, ip, port);
	if (l == NULL) {
		REAL(close)(en->hidden);
		return;
	}
	l->v6 = v6;
	l->fams = slim_listener_fams_of(en->fd);
	/* PENDING: armed (listen, PUBLISH) at this image's first accept. */
	l->backlog = backlog_of(en->fd);
	/*
	 * Only the process that asked for it withdraws it (UNLISTEN): this
	 * one, if it merely exec'd (same pid); not a child started by
	 * posix_spawn or fork+exec, which leaves that to the router's sweep.
	 */
	l->owner = en->owner > 0 && en->owner == getpid() ? en->owner : 0;
	slim_mark_hidden(en->hidden, SLIM_H_LISTENER);
	slim_hidden_ref(en->hidden, l, 0);
	struct slim_fd *e = slim_ent(en->fd);
	slim_lock(en->fd);
	slim_ext_free(e);
	e->flags = 0;
	e->u.l = l;
	atomic_store_explicit(&e->kind, SLIM_LISTENER, memory_order_relaxed);
	slim_unlock(en->fd);
	slim_debug("slim: fd %d: listener restored after exec (host listener fd %d)", en->fd,
		   en->hidden);
}

static void restore_entry(const struct entry *en, bool active)
{
	if (en->kind == 'l') {
		if (active)
			restore_listener(en);
		else if (same_socket(en->hidden, en->hcookie, true, NULL))
			REAL(close)(en->hidden); /* inert shim: nobody accepts from it */
		return;
	}
	struct slim_conn c = en->conn;
	bool v6 = false;
	if (active && slim_ent(en->fd) != NULL && same_socket(en->fd, en->cookie, false, &v6)) {
		c.v6 = !v6 ? SLIM_FORM_V4 : en->conn.v6 == SLIM_FORM_OV6 ? SLIM_FORM_OV6 : SLIM_FORM_MAPPED;
		slim_set_conn(en->fd, &c);
		slim_debug("slim: fd %d: connection %A:%P restored after exec", en->fd,
			   en->conn.pip, en->conn.pport);
	}
}

static void restore_all(const char *v, bool active)
{
	struct parser ps = {v};
	while (*ps.p != '\0') {
		struct entry en;
		if (parse_entry(&ps, &en))
			restore_entry(&en, active);
		else
			slim_debug("slim: SLIM_FDS: malformed entry ignored");
		while (*ps.p != ';' && *ps.p != '\0')
			ps.p++;
		if (*ps.p == ';')
			ps.p++;
	}
}

void slim_exec_restore(bool active)
{
	const char *env = getenv("SLIM_FDS");
	size_t mapped = 0;
	const char *handoff = handoff_take(&mapped);
	const char *v = env != NULL ? env : handoff != NULL ? handoff + VAR_LEN : NULL;
	if (v != NULL)
		restore_all(v, active);
	if (handoff != NULL)
		munmap((void *)handoff, mapped);
	if (env != NULL)
		unsetenv("SLIM_FDS"); /* children must not inherit stale data */
}
