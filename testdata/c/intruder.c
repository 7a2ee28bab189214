/* intruder: a process of a container that speaks the router's protocol
 * itself (docs/protocol.md) to get host sockets it should not have, or to
 * misuse those it has. The router socket is $SLIM_ROUTER_SOCK. Each attack
 * prints
 *     ATTACK NAME: refused (DETAIL)   or   ATTACK NAME: NOT REFUSED (DETAIL)
 *
 *   intruder enroll [CGROUP_PROCS]
 *       not under slim exec: writes its PID into CGROUP_PROCS if given
 *       (attack cgroup_procs), sends ENROLL (enroll), asks for a pool
 *       (host_sockets: refused unless it got some; SIOCGIFCONF on one
 *       then shows what the host has).
 *   intruder fakeguard
 *       puts itself under a seccomp filter of its own, with a listener,
 *       and sends ENROLL naming that listener and itself as the guard
 *       (fake_guard), then asks for a pool (host_sockets).
 *   intruder pool
 *       asks for a pool (host_sockets), as a program that slim exec
 *       started without the ioctl guard would.
 *   intruder inet6 OTHER_IP OTHER_PORT BIND_IP OVERLAY_IP
 *       under slim exec: gets AF_INET6 pool sockets (POOL with family 10)
 *       and a host listener for a dual-stack listener of its own, and
 *       attacks them with raw calls (cmd_inet6): inet6_* attacks.
 *   intruder squat PORT...
 *       under slim exec: binds a fresh pool socket to 0.0.0.0:PORT and
 *       listens (bind_PORT), for each PORT; listens on one more pool socket
 *       without binding it and prints "UNBOUND_LISTENER PORT"; then prints
 *       "HOLDING" and keeps them INTRUDER_HOLD_MS (default 3000, at most
 *       20000) ms.
 *   intruder squat6
 *       under slim exec: makes an AF_INET6 pool socket listen without a
 *       bind (on ::, dual-stack) and prints "UNBOUND_LISTENER6 PORT", then
 *       holds it as squat does.
 *
 * Exit 0 only if every attack was refused. */
#include "common.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sys/syscall.h>
#include <sys/un.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

enum { T_POOL = 2, T_LISTEN = 3, T_ENROLL = 9, T_OK = 0x80, T_POOL_OK = 0x82, T_ERROR = 0xff };
#define MAX_FDS 16

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

/* ---- the router's protocol -------------------------------------------- */

static int router_connect(void)
{
	const char *path = getenv("SLIM_ROUTER_SOCK");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (path == NULL || strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "intruder: set SLIM_ROUTER_SOCK\n");
		exit(2);
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "intruder: connect %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return fd;
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* A reply: its type, an ERROR's text, the descriptors it carried. */
struct reply {
	int type;
	char text[512];
	int fds[MAX_FDS];
	int nfds;
};

static void send_request(int conn, int type, const void *payload, uint32_t len, int fd)
{
	unsigned char msg[16 + 64] = {0};
	put32(msg, 0x4d494c53);
	msg[4] = 1;
	msg[6] = (unsigned char)type;
	put32(msg + 8, 1);
	put32(msg + 12, len);
	memcpy(msg + 16, payload, len);
	struct iovec iov = {.iov_base = msg, .iov_len = 16 + len};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctrl;
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		m.msg_control = ctrl.b;
		m.msg_controllen = sizeof ctrl.b;
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	if (sendmsg(conn, &m, MSG_NOSIGNAL) < 0) {
		fprintf(stderr, "intruder: send: %s\n", strerror(errno));
		exit(2);
	}
}

static void read_reply(int conn, struct reply *r)
{
	unsigned char msg[16 + 1024];
	char ctrl[CMSG_SPACE(MAX_FDS * sizeof(int))];
	struct iovec iov = {.iov_base = msg, .iov_len = sizeof msg};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
	memset(r, 0, sizeof *r);
	if (wait_ev(conn, POLLIN, IO_MS) <= 0) {
		snprintf(r->text, sizeof r->text, "no reply within %d ms", IO_MS);
		return;
	}
	ssize_t n = recvmsg(conn, &m, MSG_CMSG_CLOEXEC);
	if (n < 16) {
		snprintf(r->text, sizeof r->text, "reply: %s", n < 0 ? strerror(errno) : "short");
		return;
	}
	r->type = msg[6] | msg[7] << 8;
	if (r->type == T_ERROR && n >= 20)
		snprintf(r->text, sizeof r->text, "errno %u: %.*s", get32(msg + 16), (int)(n - 20), (char *)msg + 20);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < k && r->nfds < MAX_FDS; i++)
				memcpy(&r->fds[r->nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
		}
}

static void ask(int conn, int type, const void *payload, uint32_t len, int fd, struct reply *r)
{
	send_request(conn, type, payload, len, fd);
	read_reply(conn, r);
}

/* ---- attacks ----------------------------------------------------------- */

/* What SIOCGIFCONF shows on fd: "name=ip ..." into out. */
static void ifconf(int fd, char *out, size_t n)
{
	struct ifreq reqs[16];
	struct ifconf ifc = {.ifc_len = sizeof reqs, .ifc_req = reqs};
	memset(reqs, 0, sizeof reqs);
	if (syscall(SYS_ioctl, fd, SIOCGIFCONF, &ifc) < 0) {
		snprintf(out, n, "SIOCGIFCONF: %s", strerror(errno));
		return;
	}
	out[0] = 0;
	for (size_t i = 0; i < (size_t)ifc.ifc_len / sizeof reqs[0]; i++) {
		size_t used = strlen(out);
		snprintf(out + used, n - used, "%s%s=%s", used ? " " : "", reqs[i].ifr_name,
			 inet_ntoa(((sin4 *)&reqs[i].ifr_addr)->sin_addr));
	}
}

/* POOL of n: the reply, reported as host_sockets (refused if none). */
static void ask_pool(int conn, uint32_t n, struct reply *r)
{
	unsigned char count[4];
	put32(count, n);
	ask(conn, T_POOL, count, 4, -1, r);
	if (r->type != T_POOL_OK || r->nfds == 0) {
		report("host_sockets", 1, "POOL: %s", r->text[0] ? r->text : "no descriptors");
		return;
	}
	char seen[512];
	ifconf(r->fds[0], seen, sizeof seen);
	report("host_sockets", 0, "POOL gave %d host sockets; on one, %s", r->nfds, seen);
}

static void move_into(const char *procs)
{
	FILE *f = fopen(procs, "w");
	int ok = f != NULL && fprintf(f, "%d\n", getpid()) > 0;
	ok = f != NULL && fclose(f) == 0 && ok;
	report("cgroup_procs", !ok, "%s %s", ok ? "moved itself into" : strerror(errno), procs);
}

static void report_enroll(const char *name, const struct reply *r)
{
	report(name, r->type != T_OK, "ENROLL: %s", r->type == T_OK ? "OK" : r->text);
}

static int cmd_enroll(const char *procs)
{
	if (procs)
		move_into(procs);
	int conn = router_connect();
	struct reply r;
	ask(conn, T_ENROLL, NULL, 0, -1, &r);
	report_enroll("enroll", &r);
	ask_pool(conn, 4, &r);
	return 0;
}

/* A filter that allows everything, with a listener this process holds. */
static int own_listener(void)
{
	struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = {.len = 1, .filter = &allow};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

static int cmd_fakeguard(void)
{
	int listener = own_listener();
	int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (listener < 0 || pidfd < 0) {
		printf("SETUP fake_guard: FAIL seccomp listener %d, pidfd %d: %s\n", listener, pidfd, strerror(errno));
		return 1;
	}
	int conn = router_connect();
	unsigned char payload[4];
	put32(payload, (uint32_t)listener);
	struct reply r;
	ask(conn, T_ENROLL, payload, 4, pidfd, &r);
	report_enroll("fake_guard", &r);
	ask_pool(conn, 4, &r);
	return 0;
}

static int cmd_pool(void)
{
	struct reply r;
	ask_pool(router_connect(), 4, &r);
	return 0;
}

/* ---- AF_INET6 host sockets ------------------------------------------- */

/* ::ffff:ip (ip "0.0.0.0": ::), port; or an IPv6 address. */
static void mk6(struct sockaddr_in6 *sa, const char *ip, int port)
{
	memset(sa, 0, sizeof *sa);
	sa->sin6_family = AF_INET6;
	sa->sin6_port = htons((uint16_t)port);
	struct in_addr a;
	if (strchr(ip, ':') != NULL) {
		inet_pton(AF_INET6, ip, &sa->sin6_addr);
	} else if (inet_pton(AF_INET, ip, &a) == 1 && a.s_addr != 0) {
		sa->sin6_addr.s6_addr[10] = 0xff;
		sa->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&sa->sin6_addr.s6_addr[12], &a, 4);
	}
}

static const char *str6(const struct sockaddr_in6 *sa, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	inet_ntop(AF_INET6, &sa->sin6_addr, ip, sizeof ip);
	snprintf(buf, n, "[%s]:%u", ip, ntohs(sa->sin6_port));
	return buf;
}

/* A raw connect of pool socket fd to ip:port (v4-mapped unless IPv6):
 * refused when the kernel says EPERM at once (the connect6 program). */
static void connect6_attack(int fd, const char *name, const char *ip, int port)
{
	struct sockaddr_in6 sa;
	char b[80];
	mk6(&sa, ip, port);
	syscall(SYS_fcntl, fd, F_SETFL, O_NONBLOCK);
	long r = syscall(SYS_connect, fd, &sa, sizeof sa);
	int e = errno;
	report(name, r < 0 && e == EPERM, "connect %s: %s", str6(&sa, b, sizeof b), r == 0 ? "connected" : strerror(e));
}

/* A raw bind of pool socket fd: refused when it fails. */
static void bind6_attack(int fd, const char *name, const char *ip, int port)
{
	struct sockaddr_in6 sa;
	char b[80];
	mk6(&sa, ip, port);
	long r = syscall(SYS_bind, fd, &sa, sizeof sa);
	report(name, r < 0, "bind %s: %s", str6(&sa, b, sizeof b), r == 0 ? "bound" : strerror(errno));
}

/* A raw getsockname of fd: refused when it shows no wire (198.18) address. */
static void name6_attack(int fd, const char *name)
{
	struct sockaddr_in6 sa;
	socklen_t len = sizeof sa;
	char b[80];
	memset(&sa, 0, sizeof sa);
	if (syscall(SYS_getsockname, fd, &sa, &len) < 0) {
		report(name, 1, "%s", strerror(errno));
		return;
	}
	const unsigned char *a = sa.sin6_addr.s6_addr;
	int wire = IN6_IS_ADDR_V4MAPPED(&sa.sin6_addr) && a[12] == 198 && a[13] == 18;
	report(name, !wire, "%s%s", str6(&sa, b, sizeof b), wire ? ": a host address" : "");
}

/*
 * AF_INET6 host sockets, handed out in secure mode: a pool of them, and a
 * host listener for a dual-stack listener of its own. Each is attacked
 * with raw calls the shim never sees: a connect to a v4-mapped host
 * address (OTHER, a peer router), to an IPv6 address, to an overlay
 * address with no accelerated listener; a bind to a host address, to a
 * port outside the range a pool socket may take; IPV6_V6ONLY on; names.
 */
static int cmd_inet6(const char *other_ip, int other_port, const char *bind_ip, const char *overlay_ip)
{
	int conn = router_connect();
	struct reply r;
	unsigned char req[8];
	put32(req, 6);
	put32(req + 4, AF_INET6);
	ask(conn, T_POOL, req, 8, -1, &r);
	if (r.type != T_POOL_OK || r.nfds < 6) {
		printf("SETUP inet6: FAIL POOL of AF_INET6: %s (%d descriptors)\n", r.text, r.nfds);
		return 1;
	}
	int one = 1, *p = r.fds;
	name6_attack(p[0], "inet6_pool_getsockname");
	connect6_attack(p[0], "inet6_connect_mapped_host", other_ip, other_port);
	connect6_attack(p[1], "inet6_connect_ipv6", "2001:2::2", other_port);
	connect6_attack(p[2], "inet6_connect_no_listener", overlay_ip, 1);
	bind6_attack(p[3], "inet6_bind_mapped_host", bind_ip, 0);
	bind6_attack(p[4], "inet6_bind_low_port", "0.0.0.0", 80);
	long v = syscall(SYS_setsockopt, p[5], IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	report("inet6_v6only", v < 0, "IPV6_V6ONLY on a pool socket: %s", v == 0 ? "set" : strerror(errno));

	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in6 any = {.sin6_family = AF_INET6};
	int off = 0;
	if (fd < 0 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0 ||
	    syscall(SYS_bind, fd, &any, sizeof any) < 0 || syscall(SYS_listen, fd, 8) < 0) {
		printf("SETUP inet6: FAIL listen: %s\n", strerror(errno));
		return 1;
	}
	put32(req, 8);
	ask(conn, T_LISTEN, req, 4, fd, &r);
	if (r.type == T_ERROR || r.nfds == 0) {
		printf("SETUP inet6: FAIL LISTEN of a dual-stack listener: %s\n", r.text);
		return 1;
	}
	name6_attack(r.fds[0], "inet6_listener_getsockname");
	bind6_attack(r.fds[0], "inet6_listener_rebind", bind_ip, 0);
	return 0;
}

static long raw_listen(int fd) { return syscall(SYS_listen, fd, 8); }

/* bind 0.0.0.0:port, then listen, on the pool socket fd. */
static void squat(int fd, int port)
{
	char name[32];
	sin4 sa;
	snprintf(name, sizeof name, "bind_%d", port);
	mkaddr(&sa, "0.0.0.0", port);
	if (syscall(SYS_bind, fd, &sa, sizeof sa) < 0) {
		report(name, 1, "bind %s: %s", SA(&sa), strerror(errno));
		return;
	}
	if (raw_listen(fd) < 0)
		report(name, 1, "bound to %s; listen: %s", SA(&sa), strerror(errno));
	else
		report(name, 0, "bound to %s and listening in the host namespace", SA(&sa));
}

/*
 * An AF_INET6 pool socket made to listen without a bind: the kernel gives
 * it an ephemeral port on :: (dual-stack). Prints "UNBOUND_LISTENER6
 * PORT" and "HOLDING", and keeps it INTRUDER_HOLD_MS (as squat).
 */
static int cmd_squat6(void)
{
	struct reply r;
	unsigned char req[8];
	put32(req, 1);
	put32(req + 4, AF_INET6);
	ask(router_connect(), T_POOL, req, 8, -1, &r);
	if (r.type != T_POOL_OK || r.nfds < 1) {
		printf("SETUP squat6: FAIL POOL of AF_INET6: %s (%d descriptors)\n", r.text, r.nfds);
		return 1;
	}
	struct sockaddr_in6 sa;
	socklen_t len = sizeof sa;
	if (raw_listen(r.fds[0]) < 0 || syscall(SYS_getsockname, r.fds[0], &sa, &len) < 0) {
		printf("SETUP squat6: FAIL listen: %s\n", strerror(errno));
		return 1;
	}
	printf("UNBOUND_LISTENER6 %d\n", ntohs(sa.sin6_port));
	const char *v = getenv("INTRUDER_HOLD_MS");
	int ms = v ? atoi(v) : 3000;
	printf("HOLDING\n");
	fflush(stdout);
	sleep_ms(ms < 0 ? 0 : ms > 20000 ? 20000 : ms);
	return 0;
}

static int cmd_squat(int nports, char **ports)
{
	struct reply r;
	int conn = router_connect();
	unsigned char count[4];
	put32(count, (uint32_t)nports + 1);
	ask(conn, T_POOL, count, 4, -1, &r);
	if (r.type != T_POOL_OK || r.nfds < nports + 1) {
		printf("SETUP squat: FAIL POOL: %s (%d descriptors)\n", r.text, r.nfds);
		return 1;
	}
	for (int i = 0; i < nports; i++)
		squat(r.fds[i], atoi(ports[i]));
	int spare = r.fds[nports];
	sin4 sa;
	socklen_t len = sizeof sa;
	if (raw_listen(spare) == 0 && syscall(SYS_getsockname, spare, &sa, &len) == 0)
		printf("UNBOUND_LISTENER %d\n", ntohs(sa.sin_port));
	else
		printf("# listen without bind: %s\n", strerror(errno));
	const char *v = getenv("INTRUDER_HOLD_MS");
	int ms = v ? atoi(v) : 3000;
	printf("HOLDING\n");
	fflush(stdout);
	sleep_ms(ms < 0 ? 0 : ms > 20000 ? 20000 : ms);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	arm_alarm(60);
	int rc = 2;
	if (argc >= 2 && argc <= 3 && strcmp(argv[1], "enroll") == 0)
		rc = cmd_enroll(argc == 3 ? argv[2] : NULL);
	else if (argc == 2 && strcmp(argv[1], "fakeguard") == 0)
		rc = cmd_fakeguard();
	else if (argc == 2 && strcmp(argv[1], "pool") == 0)
		rc = cmd_pool();
	else if (argc == 6 && strcmp(argv[1], "inet6") == 0)
		rc = cmd_inet6(argv[2], atoi(argv[3]), argv[4], argv[5]);
	else if (argc == 2 && strcmp(argv[1], "squat6") == 0)
		rc = cmd_squat6();
	else if (argc >= 3 && strcmp(argv[1], "squat") == 0)
		rc = cmd_squat(argc - 2, argv + 2);
	else {
		fprintf(stderr, "usage: intruder enroll [CGROUP_PROCS] | fakeguard | pool | inet6 OTHER_IP OTHER_PORT BIND_IP OVERLAY_IP | squat PORT... | squat6\n");
		return 2;
	}
	printf("# %d attacks, %d not refused\n", g_attacks, g_not_refused);
	return rc != 0 ? rc : g_not_refused != 0;
}
