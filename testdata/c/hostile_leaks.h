/* hostile's attacks that try to read host addresses back through socket
 * options and the error queue (included by hostile.c, after its helpers).
 * Each is refused when nothing read holds a wire address (198.18.0.N):
 * the call failed, or the kernel answered without one. */
#ifndef HOSTILE_LEAKS_H
#define HOSTILE_LEAKS_H

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <sys/uio.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */
#endif

/* 1 if b holds a wire address 198.18.0.N anywhere; where says which. */
static int wire_bytes(const void *p, size_t n, char *where, size_t wn)
{
	const unsigned char *b = p;
	for (size_t i = 0; i + 4 <= n; i++)
		if (b[i] == 198 && b[i + 1] == 18 && b[i + 2] == 0 && b[i + 3] != 0) {
			snprintf(where, wn, "198.18.0.%u at byte %zu", b[i + 3], i);
			return 1;
		}
	return 0;
}

static long raw_getopt(int fd, int level, int opt, void *val, socklen_t *len)
{
	return syscall(SYS_getsockopt, fd, level, opt, val, len);
}

/* IP_PKTINFO, then getsockopt(IP_PKTOPTIONS): its IP_PKTINFO message
 * holds the socket's own (host) address. The whole buffer is searched, so
 * a value left there by a call that failed counts too. */
static void attack_pktoptions(int fd)
{
	int one = 1, zero = 0;
	int set = raw_setopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) == 0;
	const char *set_err = set ? "set" : strerror(errno);
	unsigned char buf[256];
	socklen_t len = sizeof buf;
	memset(buf, 0, sizeof buf);
	long r = raw_getopt(fd, IPPROTO_IP, IP_PKTOPTIONS, buf, &len);
	const char *get_err = r == 0 ? "ok" : strerror(errno);
	char where[64] = "";
	int leak = wire_bytes(buf, sizeof buf, where, sizeof where);
	report("IP_PKTOPTIONS", !leak, "IP_PKTINFO: %s; getsockopt(IP_PKTOPTIONS): %s, %u bytes%s%s", set_err, get_err,
	       r == 0 ? (unsigned)len : 0, leak ? ": " : "", where);
	if (set)
		raw_setopt(fd, IPPROTO_IP, IP_PKTINFO, &zero, sizeof zero);
}

/* SO_ORIGINAL_DST: with conntrack active in the host namespace, the
 * destination the connection was opened to, the host listener. */
static void attack_original_dst(int fd)
{
	sin4 sa;
	socklen_t len = sizeof sa;
	memset(&sa, 0, sizeof sa);
	long r = raw_getopt(fd, IPPROTO_IP, SO_ORIGINAL_DST, &sa, &len);
	const char *how = r == 0 ? "ok" : strerror(errno);
	char where[64] = "";
	int leak = wire_bytes(&sa, sizeof sa, where, sizeof where);
	report("SO_ORIGINAL_DST", !leak, "%s: %s%s", how, SA(&sa), leak ? ": the host listener" : "");
}

/* Reads the error queue for up to ms: messages read; *leak and where
 * say whether any payload, control message or address held a wire
 * address. */
static int drain_errqueue(int fd, int ms, int *leak, char *where, size_t wn)
{
	int got = 0;
	for (int i = 0; i < 16; i++) {
		unsigned char data[2048], ctrl[1024];
		sin4 from;
		struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
		struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1,
				   .msg_control = ctrl, .msg_controllen = sizeof ctrl};
		memset(&from, 0, sizeof from);
		ssize_t n = syscall(SYS_recvmsg, fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN || got > 0 || wait_ev(fd, 0, ms) <= 0)
				break;
			continue;
		}
		got++;
		*leak |= wire_bytes(data, (size_t)n, where, wn) || wire_bytes(ctrl, m.msg_controllen, where, wn) ||
			 wire_bytes(&from, m.msg_namelen, where, wn);
	}
	return got;
}

/* SO_TIMESTAMPING with flags, a round trip, then the error queue. Without
 * SOF_TIMESTAMPING_OPT_TSONLY a transmit timestamp comes with a copy of
 * the frame (host addresses and ports); OPT_CMSG adds IP_PKTINFO. */
static void attack_timestamping(int fd, const char *name, int flags)
{
	if (raw_setopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags) < 0) {
		report(name, 1, "SO_TIMESTAMPING %#x: %s", (unsigned)flags, strerror(errno));
		return;
	}
	char err[256], where[64] = "";
	int leak = 0, got = 0;
	if (echo_roundtrip(fd, fd, 64, 64, 9, err, sizeof err) < 0)
		snprintf(where, sizeof where, "round trip: %.40s", err);
	else
		got = drain_errqueue(fd, 1000, &leak, where, sizeof where);
	int zero = 0;
	raw_setopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &zero, sizeof zero);
	report(name, !leak, "SO_TIMESTAMPING %#x accepted; %d message(s) on the error queue%s%s", (unsigned)flags, got,
	       where[0] ? ": " : "", where);
}

static void attack_leaks(int fd)
{
	int one = 1;
	attack_pktoptions(fd);
	attack_original_dst(fd);
	attack_opt(fd, "IP_RECVERR", IPPROTO_IP, IP_RECVERR, &one, sizeof one);
	attack_timestamping(fd, "errqueue_OPT_CMSG", SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
							    SOF_TIMESTAMPING_OPT_CMSG | SOF_TIMESTAMPING_OPT_ID);
	attack_timestamping(fd, "errqueue_frame", SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE);
	attack_timestamping(fd, "errqueue_TSONLY", SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
							  SOF_TIMESTAMPING_OPT_TSONLY | SOF_TIMESTAMPING_OPT_ID);
}

#endif
