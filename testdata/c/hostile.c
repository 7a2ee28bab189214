/* hostile: a container application that attacks its own accelerated
 * connection (a host socket under its fd) with raw syscalls, which bypass
 * the shim, to learn host addresses or re-target the socket. Run it under
 * `slim exec`; secure mode must refuse every attack.
 *
 *   hostile client HOST:PORT [OTHER:PORT [OVERLAY:PORT [BIND_IP]]]
 *       connects to an echo server (libc connect: the shim accelerates it),
 *       prints "DATA ok" when bytes echo, "ACCEL yes|no|unknown" (is the fd
 *       a socket of another network namespace?), then one line per attack:
 *         ATTACK NAME: refused (DETAIL)   or   ATTACK NAME: NOT REFUSED (DETAIL)
 *       OTHER (default 198.18.0.2:7946, a peer router) and OVERLAY (default
 *       HOST:PORT) are where a re-connect tries to go; BIND_IP (default
 *       198.18.0.1) is what a bind tries. Exit 0 only if data echoed, the fd
 *       was not seen to be a container socket and every attack was refused.
 *       HOSTILE_HOLD_MS=N keeps the attacked connection open N ms (at most
 *       10 s) after the attacks, so a harness can see it in the host.
 *   hostile server [IP:]PORT
 *       echo server; prints "LISTENING IP:PORT", then for each connection
 *       "ACCEPT ADDR" (accept's address), "RAWPEER ADDR" and "RAWSOCK ADDR"
 *       (raw getpeername/getsockname).
 *
 * A name attack is refused when it shows only an overlay (198.19.0.0/16)
 * address or fails; an interface ioctl when it shows no wire (198.18.x)
 * address or fails; anything that changes the socket (or, SIOCSIFMTU, the
 * interfaces of its namespace) when it fails; an option or error-queue
 * read (hostile_leaks.h) when nothing it returns holds a wire address. Attacks that disconnect the
 * socket (AF_UNSPEC) each use a fresh connection.
 *
 * With SLIMTEST_INET6=1 (common.h) the sockets are AF_INET6 ones carrying
 * IPv4: the raw calls take the addresses v4-mapped, and the IPv6-level
 * options are attacked too (attack_opts6). */
#include "common.h"
#include <net/if.h>
#include <netinet/ip.h>
#include <sys/syscall.h>

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
#ifndef SO_BINDTOIFINDEX
#define SO_BINDTOIFINDEX 62
#endif

static int g_attacks, g_not_refused;

__attribute__((format(printf, 3, 4))) static void report(const char *name, int refused, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	g_attacks++;
	if (!refused)
		g_not_refused++;
	printf("ATTACK %s: %s (%s)\n", name, refused ? "refused" : "NOT REFUSED", buf);
}

static int in_16(uint32_t nbo, unsigned second) { return (ntohl(nbo) >> 16) == ((198u << 8) | second); }
static int is_wire(uint32_t nbo) { return in_16(nbo, 18); }
static int is_overlay(uint32_t nbo) { return in_16(nbo, 19); }

/* ---- raw syscalls (never the shim's wrappers) ---------------------------- */

/*
 * An address for a raw call on fd: sa itself on an AF_INET socket, sa
 * v4-mapped (0.0.0.0: ::) on an AF_INET6 one (SLIMTEST_INET6=1: the
 * attacks then go through the kernel's IPv6 calls and the *6 programs).
 */
struct rawaddr {
	union {
		sin4 in;
		struct sockaddr_in6 in6;
	} u;
	socklen_t len;
};

static const struct sockaddr *raw_sa(int fd, const sin4 *sa, struct rawaddr *r)
{
	if (t6_is_inet6(fd)) {
		t6_map(sa, &r->u.in6);
		r->len = sizeof r->u.in6;
	} else {
		r->u.in = *sa;
		r->len = sizeof r->u.in;
	}
	return (const struct sockaddr *)&r->u;
}

static long raw_connect(int fd, const sin4 *to)
{
	struct rawaddr r;
	const struct sockaddr *sa = raw_sa(fd, to, &r);
	return syscall(SYS_connect, fd, sa, r.len);
}

static long raw_setopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	return syscall(SYS_setsockopt, fd, level, opt, val, len);
}

static int raw_nonblock(int fd) { return (int)syscall(SYS_fcntl, fd, F_SETFL, O_NONBLOCK); }

enum { NAME_SOCK, NAME_PEER, NAME_SO_PEERNAME };

/*
 * An AF_INET6 name as the IPv4 one it stands for: v4-mapped or :: (an
 * AF_INET address), any other IPv6 address left AF_INET6 (not an overlay
 * address).
 */
static void unmap_name(const struct sockaddr_storage *ss, sin4 *sa)
{
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	memset(sa, 0, sizeof *sa);
	sa->sin_port = in6->sin6_port;
	sa->sin_family = AF_INET;
	if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
		memcpy(&sa->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
	else if (!IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
		sa->sin_family = AF_INET6;
}

/* An address of fd, by getsockname, getpeername or getsockopt(SO_PEERNAME). */
static int raw_addr(int fd, int which, sin4 *sa)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	long r;
	memset(&ss, 0, sizeof ss);
	if (which == NAME_SO_PEERNAME) {
		/* the kernel wants no more than the address */
		len = t6_is_inet6(fd) ? sizeof(struct sockaddr_in6) : sizeof(sin4);
		r = syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_PEERNAME, &ss, &len);
	} else
		r = syscall(which == NAME_PEER ? SYS_getpeername : SYS_getsockname, fd, &ss, &len);
	if (r < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		unmap_name(&ss, sa);
	else
		memcpy(sa, &ss, sizeof *sa);
	return 0;
}

static const char *raw_addr_str(int fd, int which, char *buf, size_t n)
{
	sin4 sa;
	if (raw_addr(fd, which, &sa) < 0)
		snprintf(buf, n, "error:%s", strerror(errno));
	else
		fmt_sa(&sa, buf, n);
	return buf;
}

/* ---- names ------------------------------------------------------------ */

static void attack_name(int fd, const char *name, int which)
{
	sin4 sa;
	if (raw_addr(fd, which, &sa) < 0) {
		report(name, 1, "%s", strerror(errno));
		return;
	}
	int ok = sa.sin_family == AF_INET && is_overlay(sa.sin_addr.s_addr);
	report(name, ok, "%s%s", SA(&sa),
	       ok ? "" : is_wire(sa.sin_addr.s_addr) ? ": a host address" : ": not an overlay address");
}

/* ---- interface ioctls ------------------------------------------------- */

struct ifnames {
	char v[64][IFNAMSIZ];
	int n;
};

static void names_add(struct ifnames *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strncmp(l->v[i], name, IFNAMSIZ) == 0)
			return;
	if (l->n < 64)
		snprintf(l->v[l->n++], IFNAMSIZ, "%s", name);
}

static void append(char *buf, size_t n, const char *name, const struct sockaddr *sa)
{
	char ip[INET_ADDRSTRLEN] = "?";
	inet_ntop(AF_INET, &((const sin4 *)sa)->sin_addr, ip, sizeof ip);
	size_t used = strlen(buf);
	if (used < n)
		snprintf(buf + used, n - used, "%s%s=%s", used ? " " : "", name, ip);
}

static void attack_ifconf(int fd, struct ifnames *names)
{
	struct ifreq reqs[32];
	struct ifconf ifc = {.ifc_len = sizeof reqs, .ifc_req = reqs};
	memset(reqs, 0, sizeof reqs);
	if (syscall(SYS_ioctl, fd, SIOCGIFCONF, &ifc) < 0) {
		report("ioctl_SIOCGIFCONF", 1, "%s", strerror(errno));
		return;
	}
	char detail[768] = "";
	int leak = 0;
	for (size_t i = 0; i < (size_t)ifc.ifc_len / sizeof reqs[0]; i++) {
		names_add(names, reqs[i].ifr_name);
		append(detail, sizeof detail, reqs[i].ifr_name, &reqs[i].ifr_addr);
		leak |= is_wire(((sin4 *)&reqs[i].ifr_addr)->sin_addr.s_addr);
	}
	report("ioctl_SIOCGIFCONF", !leak, "%s", detail[0] ? detail : "no interfaces");
}

/* Interface names by index (SIOCGIFNAME), plus the usual guesses. */
static void guess_names(int fd, struct ifnames *names)
{
	for (int i = 1; i <= 32; i++) {
		struct ifreq r;
		memset(&r, 0, sizeof r);
		r.ifr_ifindex = i;
		if (syscall(SYS_ioctl, fd, SIOCGIFNAME, &r) == 0)
			names_add(names, r.ifr_name);
	}
	static const char *const common[] = {"lo", "eth0", "eth1", "wire", "slim-vx"};
	for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
		names_add(names, common[i]);
}

static void attack_ifaddr(int fd, struct ifnames *names)
{
	char detail[768] = "";
	int leak = 0, errs = 0, last = 0;
	guess_names(fd, names);
	for (int i = 0; i < names->n; i++) {
		struct ifreq r;
		memset(&r, 0, sizeof r);
		snprintf(r.ifr_name, IFNAMSIZ, "%s", names->v[i]);
		if (syscall(SYS_ioctl, fd, SIOCGIFADDR, &r) < 0) {
			errs++;
			last = errno;
			continue;
		}
		append(detail, sizeof detail, names->v[i], &r.ifr_addr);
		leak |= is_wire(((sin4 *)&r.ifr_addr)->sin_addr.s_addr);
	}
	if (!detail[0])
		snprintf(detail, sizeof detail, "no address for %d names, last error %s", errs, strerror(last));
	report("ioctl_SIOCGIFADDR", !leak, "%s", detail);
}

/* Write access to the interfaces of the socket's namespace: setting lo's
 * MTU to its current value checks CAP_NET_ADMIN there and changes nothing. */
static void attack_ifmtu(int fd)
{
	struct ifreq r;
	memset(&r, 0, sizeof r);
	snprintf(r.ifr_name, IFNAMSIZ, "lo");
	if (syscall(SYS_ioctl, fd, SIOCGIFMTU, &r) < 0) {
		report("ioctl_SIOCSIFMTU", 1, "SIOCGIFMTU lo: %s", strerror(errno));
		return;
	}
	if (syscall(SYS_ioctl, fd, SIOCSIFMTU, &r) < 0)
		report("ioctl_SIOCSIFMTU", 1, "lo mtu %d: %s", r.ifr_mtu, strerror(errno));
	else
		report("ioctl_SIOCSIFMTU", 0, "set lo's mtu (to its value, %d): the namespace's interfaces are writable",
		       r.ifr_mtu);
}

/* ---- options that re-target the socket -------------------------------- */

/* A successful attack is undone (0, or an empty value) so the next ones
 * still act on a working connection. */
static void attack_opt(int fd, const char *name, int level, int opt, const void *val, socklen_t len)
{
	if (raw_setopt(fd, level, opt, val, len) < 0) {
		report(name, 1, "%s", strerror(errno));
		return;
	}
	int zero = 0;
	raw_setopt(fd, level, opt, len == sizeof zero ? &zero : NULL, len == sizeof zero ? sizeof zero : 0);
	report(name, 0, "setsockopt succeeded");
}

static void attack_opts(int fd, const sin4 *other)
{
	int one = 1, mark = 0x5117;
	attack_opt(fd, "SO_BINDTODEVICE", SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
	attack_opt(fd, "SO_BINDTOIFINDEX", SOL_SOCKET, SO_BINDTOIFINDEX, &one, sizeof one);
	attack_opt(fd, "SO_MARK", SOL_SOCKET, SO_MARK, &mark, sizeof mark);
	attack_opt(fd, "IP_TRANSPARENT", IPPROTO_IP, IP_TRANSPARENT, &one, sizeof one);
	attack_opt(fd, "IP_FREEBIND", IPPROTO_IP, IP_FREEBIND, &one, sizeof one);
	/* A loose source route through OTHER. */
	unsigned char lsrr[8] = {IPOPT_NOP, IPOPT_LSRR, 7, 4};
	memcpy(lsrr + 4, &other->sin_addr, 4);
	attack_opt(fd, "IP_OPTIONS_LSRR", IPPROTO_IP, IP_OPTIONS, lsrr, sizeof lsrr);
	attack_opt(fd, "TCP_REPAIR", IPPROTO_TCP, TCP_REPAIR, &one, sizeof one);
	attack_opt(fd, "TCP_SAVE_SYN", IPPROTO_TCP, TCP_SAVE_SYN, &one, sizeof one);
}

#include "hostile_leaks.h"

#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#ifndef IPV6_2292PKTOPTIONS
#define IPV6_2292PKTOPTIONS 6
#endif

/* IPV6_RECVPKTINFO, then getsockopt(IPV6_2292PKTOPTIONS): as
 * IP_PKTOPTIONS, at the IPv6 level. */
static void attack_pktoptions6(int fd)
{
	int one = 1, zero = 0;
	int set = raw_setopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) == 0;
	const char *set_err = set ? "set" : strerror(errno);
	unsigned char buf[256];
	socklen_t len = sizeof buf;
	memset(buf, 0, sizeof buf);
	long r = raw_getopt(fd, IPPROTO_IPV6, IPV6_2292PKTOPTIONS, buf, &len);
	const char *get_err = r == 0 ? "ok" : strerror(errno);
	char where[64] = "";
	int leak = wire_bytes(buf, sizeof buf, where, sizeof where);
	report("IPV6_PKTOPTIONS", !leak && !set, "IPV6_RECVPKTINFO: %s; getsockopt(IPV6_2292PKTOPTIONS): %s, %u bytes%s%s",
	       set_err, get_err, r == 0 ? (unsigned)len : 0, leak ? ": " : "", where);
	if (set)
		raw_setopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &zero, sizeof zero);
}

/* On an AF_INET6 host socket: options of the IPv6 level that re-target
 * it, turn it into an AF_INET socket (IPV6_ADDRFORM: out of the *6
 * programs' reach, into the *4 ones'), or hand host addresses back. */
static void attack_opts6(int fd)
{
	int one = 1, inet = AF_INET;
	attack_opt(fd, "IPV6_TRANSPARENT", IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof one);
	attack_opt(fd, "IPV6_FREEBIND", IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
	attack_opt(fd, "IPV6_RECVERR", IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof one);
	attack_pktoptions6(fd);
	/* last: if it succeeds the socket is AF_INET from then on */
	attack_opt(fd, "IPV6_ADDRFORM", IPPROTO_IPV6, IPV6_ADDRFORM, &inet, sizeof inet);
}

/* ---- re-connecting ---------------------------------------------------- */

/* A non-blocking raw connect: refused if it fails at once. */
static void attack_connect(int fd, const char *name, const sin4 *to, const char *before)
{
	raw_nonblock(fd);
	if (raw_connect(fd, to) == 0) {
		report(name, 0, "%sconnect(%s) = 0", before, SA(to));
		return;
	}
	if (errno != EINPROGRESS) {
		report(name, 1, "%s%s: %s", before, SA(to), strerror(errno));
		return;
	}
	int ev = wait_ev(fd, POLLOUT, 2000);
	int e = so_error(fd);
	report(name, 0, "%sconnect to %s in progress; after 2 s: %s", before, SA(to),
	       ev == 0 ? "still connecting" : e == 0 ? "connected" : strerror(e));
}

/* A fresh accelerated connection to target that echoes; -1 on failure. */
static int fresh(const sin4 *target, const char *name)
{
	char err[256];
	int fd = connect_to(target);
	if (fd < 0) {
		printf("SETUP %s: FAIL connect %s: %s\n", name, SA(target), strerror(errno));
		return -1;
	}
	if (echo_roundtrip(fd, fd, 512, 512, 3, err, sizeof err) < 0) {
		printf("SETUP %s: FAIL echo: %s\n", name, err);
		close(fd);
		return -1;
	}
	return fd;
}

/* connect(AF_UNSPEC) on a fresh connection: fd, or -1 (reported). */
static int fresh_unspec(const sin4 *target, const char *name)
{
	int fd = fresh(target, name);
	if (fd < 0) {
		g_not_refused++; /* the attack could not run: not a pass */
		return -1;
	}
	struct sockaddr unspec = {.sa_family = AF_UNSPEC};
	if (syscall(SYS_connect, fd, &unspec, sizeof unspec) < 0) {
		report(name, 1, "connect(AF_UNSPEC): %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void attack_unspec_connect(const sin4 *target, const char *name, const sin4 *to)
{
	int fd = fresh_unspec(target, name);
	if (fd < 0)
		return;
	attack_connect(fd, name, to, "AF_UNSPEC ok, then ");
	close(fd);
}

static void attack_unspec_bind(const sin4 *target, const sin4 *bindaddr)
{
	int fd = fresh_unspec(target, "unspec_bind");
	if (fd < 0)
		return;
	struct rawaddr ra;
	const struct sockaddr *b = raw_sa(fd, bindaddr, &ra);
	if (syscall(SYS_bind, fd, b, ra.len) < 0)
		report("unspec_bind", 1, "AF_UNSPEC ok, then bind %s: %s", SA(bindaddr), strerror(errno));
	else
		report("unspec_bind", 0, "AF_UNSPEC ok, then bound to %s", SA(bindaddr));
	close(fd);
}

static void attack_unspec_fastopen(const sin4 *target, const sin4 *to)
{
	int fd = fresh_unspec(target, "unspec_sendto_fastopen");
	if (fd < 0)
		return;
	raw_nonblock(fd);
	struct rawaddr ra;
	const struct sockaddr *dst = raw_sa(fd, to, &ra);
	long r = syscall(SYS_sendto, fd, "x", 1, MSG_FASTOPEN | MSG_NOSIGNAL, dst, ra.len);
	int e = errno;
	if (r >= 0 || e == EINPROGRESS || e == EAGAIN)
		report("unspec_sendto_fastopen", 0, "AF_UNSPEC ok, then sendto(MSG_FASTOPEN, %s) = %ld%s%s", SA(to), r,
		       r < 0 ? " " : "", r < 0 ? strerror(e) : "");
	else
		report("unspec_sendto_fastopen", 1, "AF_UNSPEC ok, then sendto(MSG_FASTOPEN, %s): %s", SA(to),
		       strerror(e));
	close(fd);
}

/* ---- the client ------------------------------------------------------- */

static unsigned long long netns_cookie(int fd)
{
	unsigned long long c = 0;
	socklen_t l = sizeof c;
	if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_NETNS_COOKIE, &c, &l) < 0)
		return 0;
	return c;
}

/* 1 accelerated (a socket of another namespace), 0 not, -1 unknown. */
static int check_accel(int fd)
{
	int probe = socket(AF_INET, SOCK_STREAM, 0);
	unsigned long long mine = netns_cookie(probe), its = netns_cookie(fd);
	close(probe);
	if (mine == 0 || its == 0) {
		printf("ACCEL unknown (SO_NETNS_COOKIE: %s)\n", strerror(errno));
		return -1;
	}
	printf("ACCEL %s (netns cookie of the fd %llu, of this process %llu)\n", mine != its ? "yes" : "no", its,
	       mine);
	return mine != its;
}

static int data_ok(int fd)
{
	char err[256];
	if (echo_roundtrip(fd, fd, 256 * 1024, 16 * 1024, 1, err, sizeof err) < 0) {
		printf("DATA FAIL (%s)\n", err);
		return 0;
	}
	printf("DATA ok\n");
	return 1;
}

static void attack_connected(int fd, const sin4 *other)
{
	struct ifnames names = {.n = 0};
	attack_name(fd, "getsockname", NAME_SOCK);
	attack_name(fd, "getpeername", NAME_PEER);
	attack_name(fd, "SO_PEERNAME", NAME_SO_PEERNAME);
	attack_ifconf(fd, &names);
	attack_ifaddr(fd, &names);
	attack_ifmtu(fd);
	attack_opts(fd, other);
	attack_leaks(fd);
	if (t6_is_inet6(fd))
		attack_opts6(fd);
	if (raw_connect(fd, other) == 0)
		report("second_connect", 0, "connected to %s", SA(other));
	else
		report("second_connect", 1, "%s: %s", SA(other), strerror(errno));
}

static void hold(void)
{
	const char *v = getenv("HOSTILE_HOLD_MS");
	int ms = v ? atoi(v) : 0;
	if (ms <= 0)
		return;
	ms = ms > 10000 ? 10000 : ms;
	printf("# holding the connection %d ms\n", ms);
	sleep_ms(ms);
}

static int parse_or_default(int argc, char **argv, int i, const char *def, sin4 *sa)
{
	const char *s = argc > i ? argv[i] : def;
	if (parse_ipport(s, sa) == 0)
		return 0;
	fprintf(stderr, "hostile: bad address %s (want IP:PORT)\n", s);
	return -1;
}

static int client(int argc, char **argv)
{
	sin4 target, other, overlay, bindaddr;
	if (parse_or_default(argc, argv, 2, NULL, &target) < 0 ||
	    parse_or_default(argc, argv, 3, "198.18.0.2:7946", &other) < 0 ||
	    parse_or_default(argc, argv, 4, argv[2], &overlay) < 0 ||
	    mkaddr(&bindaddr, argc > 5 ? argv[5] : "198.18.0.1", 0) < 0)
		return 2;
	arm_alarm(60);
	int fd = connect_to(&target);
	if (fd < 0) {
		printf("DATA FAIL (connect %s: %s)\n", SA(&target), strerror(errno));
		return 1;
	}
	int ok = data_ok(fd);
	ok &= check_accel(fd) != 0;
	attack_connected(fd, &other);
	attack_unspec_connect(&target, "unspec_connect_other", &other);
	attack_unspec_connect(&target, "unspec_connect_overlay", &overlay);
	attack_unspec_bind(&target, &bindaddr);
	attack_unspec_fastopen(&target, &other);
	hold();
	close(fd);
	printf("# %d attacks, %d not refused or not run\n", g_attacks, g_not_refused);
	fflush(stdout);
	return ok && g_not_refused == 0 ? 0 : 1;
}

/* ---- the server ------------------------------------------------------- */

static void *echo_thread(void *p)
{
	int fd = (int)(intptr_t)p;
	echo_loop(fd);
	close(fd);
	return NULL;
}

static void print_accepted(int fd, const sin4 *acc, socklen_t len)
{
	char a[64], b[64];
	printf("ACCEPT %s\n", len == sizeof *acc ? SA(acc) : "(no address)");
	printf("RAWPEER %s\n", raw_addr_str(fd, NAME_PEER, a, sizeof a));
	printf("RAWSOCK %s\n", raw_addr_str(fd, NAME_SOCK, b, sizeof b));
	fflush(stdout);
}

static int server(const char *spec)
{
	sin4 sa;
	int ok = strchr(spec, ':') ? parse_ipport(spec, &sa) : mkaddr(&sa, "0.0.0.0", atoi(spec));
	int lfd = ok < 0 ? -1 : listen_on(&sa, 128, 0, NULL);
	if (lfd < 0) {
		fprintf(stderr, "hostile: listen %s: %s\n", spec, strerror(errno));
		return 2;
	}
	printf("LISTENING %s\n", SA(&sa));
	for (;;) {
		sin4 acc;
		socklen_t len = sizeof acc;
		int fd = accept(lfd, (struct sockaddr *)&acc, &len);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
				sleep_ms(100);
			continue;
		}
		print_accepted(fd, &acc, len);
		if (spawn_detached(echo_thread, (void *)(intptr_t)fd) != 0)
			close(fd);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && strcmp(argv[1], "client") == 0)
		return client(argc, argv);
	if (argc == 3 && strcmp(argv[1], "server") == 0)
		return server(argv[2]);
	fprintf(stderr, "usage: hostile client HOST:PORT [OTHER:PORT [OVERLAY:PORT [BIND_IP]]]\n"
			"       hostile server [IP:]PORT\n");
	return 2;
}
