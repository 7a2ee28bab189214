/* getsockname/getpeername: AF_INET, addrlen 16, both ends agree crosswise
 * (client local == server peer and vice versa), the client's peer is the
 * address it connected to, the server's local port is the listener's;
 * before connect, with truncating/oversized buffers, after shutdown, after
 * both sides closed, and on a socket bound before connect. */
#include "common.h"

static struct hello last;

static void client(const sin4 *target, const sin4 *refused)
{
	(void)refused;
	char err[256];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	sin4 l, p;
	int r = get_local(fd, &l);
	CHECK("unconnected_getsockname_any", r == 0 && l.sin_addr.s_addr == 0 && l.sin_port == 0,
	      "r=%d %s (want 0.0.0.0:0)", r, r ? strerror(errno) : SA(&l));
	r = get_peer(fd, &p);
	int e = errno;
	CHECK("unconnected_getpeername_enotconn", r < 0 && e == ENOTCONN, "r=%d %s", r, strerror(e));

	r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	CHECK("connect", r == 0, "connect %s: %s", SA(target), strerror(errno));
	if (r < 0)
		return;
	print_addr("client", fd, NULL);
	r = get_local(fd, &l);
	CHECK("getsockname_af_inet_16", r == 0, "%s", strerror(errno));
	CHECK("getsockname_bound", l.sin_port != 0 && l.sin_addr.s_addr != 0, "local %s", SA(&l));
	r = get_peer(fd, &p);
	CHECK("getpeername_af_inet_16", r == 0, "%s", strerror(errno));
	CHECK("getpeername_is_target", sa_eq(&p, target), "peer %s, connected to %s", SA(&p), SA(target));

	r = read_hello(fd, &last, err, sizeof err);
	CHECK("hello", r == 0, "%s", err);
	if (r == 0) {
		CHECK("client_local_eq_server_peer", sa_eq(&l, &last.peer), "client local %s, server peer %s", SA(&l),
		      SA(&last.peer));
		CHECK("client_peer_eq_server_local", sa_eq(&p, &last.local), "client peer %s, server local %s",
		      SA(&p), SA(&last.local));
		CHECK("same_ip_family_both_ends", last.local.sin_family == AF_INET && last.peer.sin_family == AF_INET,
		      "families %d %d", last.local.sin_family, last.peer.sin_family);
	}

	/* Buffer sizes: large buffer gets 16; a 4-byte buffer is truncated but
	 * addrlen still says 16. */
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	memset(&ss, 0, sizeof ss);
	r = getsockname(fd, (struct sockaddr *)&ss, &len);
	CHECK("getsockname_big_buffer", r == 0 && len == 16 && ss.ss_family == AF_INET, "r=%d len=%u family=%d", r,
	      (unsigned)len, ss.ss_family);
	unsigned char small[8];
	memset(small, 0xEE, sizeof small);
	len = 4;
	r = getpeername(fd, (struct sockaddr *)small, &len);
	CHECK("getpeername_truncated", r == 0 && len == 16 && memcmp(small, &p, 4) == 0 && small[4] == 0xEE,
	      "r=%d len=%u", r, (unsigned)len);

	/* Shutting down. */
	/* SHUT_RD sends nothing: still connected. (After SHUT_WR the answer
	 * depends on how fast the peer closes, so that is not checked.) */
	shutdown(fd, SHUT_RD);
	sin4 l2, p2;
	r = get_peer(fd, &p2);
	CHECK("getpeername_after_shut_rd", r == 0 && sa_eq(&p, &p2), "r=%d %s", r, r ? strerror(errno) : SA(&p2));
	shutdown(fd, SHUT_WR);
	/* The server closes on our EOF; wait until both FINs are through (the
	 * socket reaches TCP_CLOSE; reads already return 0 after SHUT_RD). */
	int st = -1;
	for (int i = 0; i < 500; i++) {
		struct tcp_info ti;
		socklen_t tl = sizeof ti;
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0)
			st = ti.tcpi_state;
		if (st == 7 /* TCP_CLOSE */)
			break;
		sleep_ms(10);
	}
	CHECK("both_closed", st == 7, "TCP state %d after 5 s, want TCP_CLOSE", st);
	/* Both FINs exchanged: the kernel now says ENOTCONN for the peer but
	 * still reports the local address. */
	r = get_peer(fd, &p2);
	e = errno;
	CHECK("getpeername_after_both_closed_enotconn", r < 0 && e == ENOTCONN, "r=%d %s", r,
	      r ? strerror(e) : SA(&p2));
	r = get_local(fd, &l2);
	CHECK("getsockname_after_both_closed", r == 0 && sa_eq(&l, &l2), "r=%d %s (was %s)", r,
	      r ? strerror(errno) : SA(&l2), SA(&l));
	close(fd);

	/* Bound to INADDR_ANY:0 before connect: the port bind chose is kept. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	sin4 any;
	mkaddr(&any, "0.0.0.0", 0);
	r = bind(fd, (struct sockaddr *)&any, sizeof any);
	int bport = sock_port(fd);
	CHECK("bind_any_gets_port", r == 0 && bport > 0, "bind: r=%d port=%d", r, bport);
	r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	CHECK("bound_connect", r == 0, "connect: %s", strerror(errno));
	if (r == 0) {
		get_local(fd, &l);
		CHECK("bound_connect_keeps_port", ntohs(l.sin_port) == bport, "local %s, bound port %d", SA(&l), bport);
		struct hello h;
		r = read_hello(fd, &h, err, sizeof err);
		CHECK("bound_connect_crosswise", r == 0 && hello_matches(fd, &h, err, sizeof err) == 0, "%s", err);
		print_addr("client-bound", fd, NULL);
	}
	close(fd);
	check_server_clean(&last);
}

/* Server side: accepted socket's local port is the listener's port, and
 * getsockname reports the same family and size. */
static void srv_names(int fd, long idx)
{
	sin4 l;
	int r = get_local(fd, &l);
	CHECKQ(idx >= 4, "srv_local_port_is_listener_port", r == 0 && ntohs(l.sin_port) == g_listen_port,
	       "getsockname %s, listener port %d", r ? strerror(errno) : SA(&l), g_listen_port);
}

static const struct srv_hooks hooks = {.conn_fn = srv_names};

int main(int argc, char **argv)
{
	static const struct prog p = {.name = "names", .alarm_s = 10, .client = client, .hooks = &hooks};
	return prog_main(argc, argv, &p);
}
