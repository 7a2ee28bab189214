/*
 * AF_INET6 sockets that carry IPv4 (docs/datapath.md "AF_INET6 sockets").
 *
 * A dual-stack listener (bound to :: without IPV6_V6ONLY, or to its own
 * overlay address v4-mapped) and an AF_INET6 socket connecting to a
 * v4-mapped overlay address are accelerated like AF_INET ones. Their host
 * sockets are AF_INET6 too (the router makes them so: POOL with a family,
 * LISTEN of an AF_INET6 socket), on v4-mapped host addresses, so the app
 * sees the family it made on every call the shim does not wrap
 * (getsockopt(SO_DOMAIN), options at the IPv6 level); the overlay
 * addresses it is shown come v4-mapped, flowinfo and scope id 0, as the
 * kernel would give them. IPv6 destinations outside the IPv6 overlay and
 * IPV6_V6ONLY sockets that do not use it are left alone
 * (inet6overlay.c has the IPv6 overlay).
 */
#include "shim.h"

#include <netinet/in.h>
#include <string.h>

void slim_inaddr_set(struct slim_inaddr *a, uint32_t ip, uint16_t port, bool v6)
{
	memset(a, 0, sizeof *a);
	if (!v6) {
		a->u.in.sin_family = AF_INET;
		a->u.in.sin_port = port;
		a->u.in.sin_addr.s_addr = ip;
		a->len = sizeof a->u.in;
		return;
	}
	a->u.in6.sin6_family = AF_INET6;
	a->u.in6.sin6_port = port;
	a->u.in6.sin6_addr.s6_addr[10] = 0xff;
	a->u.in6.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&a->u.in6.sin6_addr.s6_addr[12], &ip, 4);
	a->len = sizeof a->u.in6;
}

bool slim_inaddr_v4(const struct sockaddr *sa, socklen_t len, uint32_t *ip, uint16_t *port)
{
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		*ip = in->sin_addr.s_addr;
		*port = in->sin_port;
		return true;
	}
	if (sa->sa_family != AF_INET6 || len < sizeof(struct sockaddr_in6))
		return false;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	*port = in6->sin6_port;
	if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		memcpy(ip, &in6->sin6_addr.s6_addr[12], 4);
		return true;
	}
	if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) {
		*ip = htonl(INADDR_ANY);
		return true;
	}
	return false;
}

bool slim_v6only(int fd)
{
	int v = 0;
	socklen_t len = sizeof v;
	return getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len) == 0 && v != 0;
}

static const char *const v6_why[SLIM_V6_CASES] = {
	[SLIM_V6_DEST] = "a connect to an IPv6 address",
	[SLIM_V6_ONLY] = "an IPV6_V6ONLY socket",
	[SLIM_V6_BOUND] = "a listener bound to an IPv6 address",
	[SLIM_V6_OVERLAY_SECURE] = "an IPv6 overlay address in secure mode (not guarded yet)",
};

static _Atomic bool v6_said[SLIM_V6_CASES];

void slim_v6_left_alone(int fd, int why)
{
	slim_stats_fallback(SLIM_FB_IPV6);
	if (why < 0 || why >= SLIM_V6_CASES || !slim_cfg.debug ||
	    atomic_exchange_explicit(&v6_said[why], true, memory_order_relaxed))
		return;
	slim_log("slim: fd %d: %s is not accelerated; over the overlay (said once)", fd,
		 v6_why[why]);
}
