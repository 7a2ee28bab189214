/*
 * IPv6 overlay addresses (docs/datapath.md "IPv6 overlay addresses").
 *
 * With an IPv6 overlay, a container's IPv6 address is the overlay's /96
 * (HELLO_OK gives it) with its IPv4 overlay address as the last 32 bits.
 * The directory, the router's requests and the preamble stay keyed by the
 * IPv4 address: an IPv6 destination in the /96 is translated to it, and
 * the directory's slot flags say which listeners take IPv6 clients. The
 * host sockets are the AF_INET6 ones of v4-mapped IPv4 (inet6.c): the
 * host connection is IPv4 on the wire, while the app's socket keeps its
 * family for every call the shim does not wrap (SO_DOMAIN, options at the
 * IPv6 level). The addresses the shim shows (getsockname, getpeername,
 * accept) are the IPv6 overlay ones, flowinfo and scope id 0. The preamble
 * says the client connected to the IPv6 address, so the server's shim
 * shows both ends in that form.
 *
 * Left alone (over the overlay, counted under ipv6, said once): secure
 * mode (its BPF programs guard IPv4 host sockets only).
 */
#include "shim.h"

#include <netinet/in.h>
#include <string.h>

/* Whether there is an IPv6 overlay (self->v6pfx: its /96); false without HELLO. */
static bool ov6_prefix(struct slim_self *self)
{
	return slim_hello(self) && self->ipv6;
}

bool slim_ov6_is(const struct slim_self *self, const struct in6_addr *a, uint32_t *ip)
{
	if (!self->ipv6 || memcmp(a->s6_addr, self->v6pfx, 12) != 0)
		return false;
	memcpy(ip, &a->s6_addr[12], 4);
	return true;
}

void slim_inaddr_form(struct slim_inaddr *a, uint32_t ip, uint16_t port, int form)
{
	slim_inaddr_set(a, ip, port, form != SLIM_FORM_V4);
	struct slim_self self;
	if (form == SLIM_FORM_OV6 && ov6_prefix(&self))
		memcpy(a->u.in6.sin6_addr.s6_addr, self.v6pfx, 12);
}

int slim_ov6_dest(int fd, const struct sockaddr_in6 *in6, struct sockaddr_in *dst4)
{
	struct slim_self self;
	uint32_t ip;
	if (!ov6_prefix(&self) || !slim_ov6_is(&self, &in6->sin6_addr, &ip))
		return 0;
	if (self.secure) {
		slim_v6_left_alone(fd, SLIM_V6_OVERLAY_SECURE);
		return -1;
	}
	memset(dst4, 0, sizeof *dst4);
	dst4->sin_family = AF_INET;
	dst4->sin_addr.s_addr = ip;
	dst4->sin_port = in6->sin6_port;
	return 1;
}

bool slim_inaddr_is_ov6(const struct slim_inaddr *a)
{
	return a->u.sa.sa_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&a->u.in6.sin6_addr);
}

void slim_preamble_mark_ov6(uint8_t pre[SLIM_PREAMBLE_LEN])
{
	pre[5] |= SLIM_PREAMBLE_F_IPV6;
}

int slim_accepted_form(const struct slim_listener *l, const uint8_t pre[SLIM_PREAMBLE_LEN])
{
	if (!(pre[5] & SLIM_PREAMBLE_F_IPV6))
		return (l->fams & SLIM_DIR_F_NOIPV4) ? -1 : l->v6 ? SLIM_FORM_MAPPED : SLIM_FORM_V4;
	return (l->fams & SLIM_DIR_F_IPV6) ? SLIM_FORM_OV6 : -1;
}

int slim_listener_v6(int fd, const struct sockaddr_in6 *in6, uint32_t *ip, uint16_t *fams)
{
	struct slim_self self;
	if (!ov6_prefix(&self))
		return 0;
	bool any = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
	uint32_t own;
	if (!any && !(slim_ov6_is(&self, &in6->sin6_addr, &own) && own == self.ip))
		return 0;
	if (self.secure)
		return -1;
	*ip = any ? htonl(INADDR_ANY) : own;
	*fams = SLIM_DIR_F_IPV6;
	if (!any || slim_v6only(fd))
		*fams |= SLIM_DIR_F_NOIPV4;
	return 1;
}

bool slim_inaddr_v4_or_ov6(const struct sockaddr *sa, socklen_t len, uint32_t *ip, uint16_t *port)
{
	if (slim_inaddr_v4(sa, len, ip, port))
		return true;
	struct slim_self self;
	if (sa == NULL || sa->sa_family != AF_INET6 || len < sizeof(struct sockaddr_in6) ||
	    !ov6_prefix(&self) || self.secure)
		return false;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	*port = in6->sin6_port;
	return slim_ov6_is(&self, &in6->sin6_addr, ip);
}

bool slim_bound_other_family(int fd, bool ov6)
{
	struct slim_inaddr a;
	a.len = sizeof a.u;
	if (REAL(getsockname)(fd, &a.u.sa, &a.len) != 0 || a.u.sa.sa_family != AF_INET6 ||
	    IN6_IS_ADDR_UNSPECIFIED(&a.u.in6.sin6_addr))
		return false;
	return IN6_IS_ADDR_V4MAPPED(&a.u.in6.sin6_addr) == ov6;
}

bool slim_opt_host_skips(const struct slim_opt *o)
{
	return o->level == IPPROTO_IPV6 && o->name == IPV6_V6ONLY;
}

uint16_t slim_listener_fams_of(int fd)
{
	struct slim_inaddr a;
	a.len = sizeof a.u;
	if (REAL(getsockname)(fd, &a.u.sa, &a.len) != 0 || a.u.sa.sa_family != AF_INET6 ||
	    IN6_IS_ADDR_V4MAPPED(&a.u.in6.sin6_addr))
		return 0;
	if (IN6_IS_ADDR_UNSPECIFIED(&a.u.in6.sin6_addr) && !slim_v6only(fd))
		return SLIM_DIR_F_IPV6;
	return SLIM_DIR_F_IPV6 | SLIM_DIR_F_NOIPV4;
}
