/* Socket options set before connect survive it (TCP_NODELAY, SO_KEEPALIVE,
 * SO_SNDBUF/SO_RCVBUF, SO_LINGER, TCP_KEEPIDLE/INTVL/CNT, TCP_USER_TIMEOUT,
 * IP_TOS, SO_RCVTIMEO); SO_TYPE/SO_DOMAIN/SO_PROTOCOL/TCP_INFO look right;
 * listener options: SO_REUSEADDR, SO_REUSEPORT (two listeners on one port,
 * both get connections), SO_ACCEPTCONN, and options set on the listener are
 * inherited by accepted sockets. */
#include "common.h"

#define BUFSZ (96 * 1024)

static void client(const sin4 *target, const sin4 *refused)
{
	(void)refused;
	char err[256];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct linger lg = {.l_onoff = 1, .l_linger = 3};
	struct timeval rto = {0, 300000};
	int rc = 0;
	rc |= setint(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	rc |= setint(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	rc |= setint(fd, SOL_SOCKET, SO_SNDBUF, BUFSZ);
	rc |= setint(fd, SOL_SOCKET, SO_RCVBUF, BUFSZ);
	rc |= setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	rc |= setint(fd, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	rc |= setint(fd, IPPROTO_TCP, TCP_KEEPINTVL, 11);
	rc |= setint(fd, IPPROTO_TCP, TCP_KEEPCNT, 5);
	rc |= setint(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 12345);
	rc |= setint(fd, IPPROTO_IP, IP_TOS, 0x10);
	rc |= setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof rto);
	CHECK("set_before_connect", rc == 0, "a setsockopt failed: %s", strerror(errno));
	int r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	CHECK("connect", r == 0, "connect: %s", strerror(errno));
	if (r < 0)
		return;
	print_addr("client", fd, NULL);
	int v;
	v = getint(fd, IPPROTO_TCP, TCP_NODELAY);
	CHECK("tcp_nodelay", v == 1, "TCP_NODELAY=%d", v);
	v = getint(fd, SOL_SOCKET, SO_KEEPALIVE);
	CHECK("so_keepalive", v == 1, "SO_KEEPALIVE=%d", v);
	v = getint(fd, SOL_SOCKET, SO_SNDBUF);
	CHECK("so_sndbuf", v >= BUFSZ, "SO_SNDBUF=%d < %d", v, BUFSZ);
	v = getint(fd, SOL_SOCKET, SO_RCVBUF);
	CHECK("so_rcvbuf", v >= BUFSZ, "SO_RCVBUF=%d < %d", v, BUFSZ);
	struct linger g = {0, 0};
	socklen_t gl = sizeof g;
	getsockopt(fd, SOL_SOCKET, SO_LINGER, &g, &gl);
	CHECK("so_linger", g.l_onoff && g.l_linger == 3, "SO_LINGER={%d,%d}", g.l_onoff, g.l_linger);
	v = getint(fd, IPPROTO_TCP, TCP_KEEPIDLE);
	CHECK("tcp_keepidle", v == 77, "TCP_KEEPIDLE=%d", v);
	v = getint(fd, IPPROTO_TCP, TCP_KEEPINTVL);
	CHECK("tcp_keepintvl", v == 11, "TCP_KEEPINTVL=%d", v);
	v = getint(fd, IPPROTO_TCP, TCP_KEEPCNT);
	CHECK("tcp_keepcnt", v == 5, "TCP_KEEPCNT=%d", v);
	v = getint(fd, IPPROTO_TCP, TCP_USER_TIMEOUT);
	CHECK("tcp_user_timeout", v == 12345, "TCP_USER_TIMEOUT=%d", v);
	v = getint(fd, IPPROTO_IP, IP_TOS);
	CHECK("ip_tos", (v & 0xfc) == 0x10, "IP_TOS=%#x", v);
	v = getint(fd, SOL_SOCKET, SO_TYPE);
	CHECK("so_type", v == SOCK_STREAM, "SO_TYPE=%d", v);
	v = getint(fd, SOL_SOCKET, SO_DOMAIN);
	CHECK("so_domain", v == t6_domain(), "SO_DOMAIN=%d", v);
	v = getint(fd, SOL_SOCKET, SO_PROTOCOL);
	CHECK("so_protocol", v == IPPROTO_TCP, "SO_PROTOCOL=%d", v);
	v = getint(fd, SOL_SOCKET, SO_ACCEPTCONN);
	CHECK("so_acceptconn_client_0", v == 0, "SO_ACCEPTCONN=%d", v);
	struct tcp_info ti;
	socklen_t tl = sizeof ti;
	memset(&ti, 0, sizeof ti);
	r = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl);
	CHECK("tcp_info_established", r == 0 && ti.tcpi_state == 1 /* TCP_ESTABLISHED */, "r=%d state=%d", r,
	      ti.tcpi_state);
	struct hello h;
	r = read_hello(fd, &h, err, sizeof err);
	CHECK("hello", r == 0 && hello_matches(fd, &h, err, sizeof err) == 0, "%s", err);
	/* SO_RCVTIMEO set before connect bounds a blocking read now. */
	char c;
	double t0 = now_ms();
	ssize_t n = read(fd, &c, 1);
	int e = errno;
	double dt = now_ms() - t0;
	CHECK("so_rcvtimeo", n < 0 && (e == EAGAIN || e == EWOULDBLOCK) && dt >= 200 && dt < 3000,
	      "read returned %zd (%s) after %.0f ms; want EAGAIN after ~300 ms", n, n < 0 ? strerror(e) : "data", dt);
	CHECK("set_after_connect", setint(fd, IPPROTO_TCP, TCP_NODELAY, 0) == 0 &&
					   getint(fd, IPPROTO_TCP, TCP_NODELAY) == 0,
	      "TCP_NODELAY 0 after connect not applied");
	CHECK("echo", echo_roundtrip(fd, fd, 300000, 30000, 4, err, sizeof err) == 0, "%s", err);
	close(fd);
	check_server_clean(&h);
}

/* The main listener carries options every accepted socket should inherit. */
static void setup_listener(int fd)
{
	setint(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	setint(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	setint(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	setint(fd, IPPROTO_TCP, TCP_KEEPIDLE, 99);
}

static void check_inherited(int fd, long idx)
{
	int nd = getint(fd, IPPROTO_TCP, TCP_NODELAY), ka = getint(fd, SOL_SOCKET, SO_KEEPALIVE),
	    ki = getint(fd, IPPROTO_TCP, TCP_KEEPIDLE);
	CHECKQ(idx >= 4, "srv_accepted_inherits_listener_opts", nd == 1 && ka == 1 && ki == 99,
	       "accepted socket: TCP_NODELAY=%d SO_KEEPALIVE=%d TCP_KEEPIDLE=%d (listener had 1, 1, 99)", nd, ka, ki);
	int ac = getint(fd, SOL_SOCKET, SO_ACCEPTCONN);
	CHECKQ(idx >= 4, "srv_accepted_not_acceptconn", ac == 0, "SO_ACCEPTCONN=%d on an accepted socket", ac);
}

static const struct srv_hooks hooks = {.conn_fn = check_inherited};

static int reuseport_listener(const sin4 *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	setint(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	setint(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (bind(fd, (const struct sockaddr *)sa, sizeof *sa) < 0 || listen(fd, 64) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

#define NRP 32
static void local(const char *ip)
{
	sin4 sa;
	mkaddr(&sa, ip, 0);
	int a = reuseport_listener(&sa);
	CHECK("reuseport_first", a >= 0, "listen: %s", strerror(errno));
	if (a < 0)
		return;
	CHECK("so_reuseaddr_get", getint(a, SOL_SOCKET, SO_REUSEADDR) == 1, "SO_REUSEADDR not 1");
	CHECK("so_reuseport_get", getint(a, SOL_SOCKET, SO_REUSEPORT) == 1, "SO_REUSEPORT not 1");
	CHECK("so_acceptconn_listener", getint(a, SOL_SOCKET, SO_ACCEPTCONN) == 1, "SO_ACCEPTCONN not 1");
	get_local(a, &sa);
	int b = reuseport_listener(&sa);
	CHECK("reuseport_second_same_port", b >= 0, "second listener on %s: %s", SA(&sa), strerror(errno));
	int x = socket(AF_INET, SOCK_STREAM, 0);
	int r = bind(x, (struct sockaddr *)&sa, sizeof sa);
	int e = errno;
	CHECK("no_reuseport_eaddrinuse", r < 0 && e == EADDRINUSE, "bind without SO_REUSEPORT: r=%d %s", r,
	      strerror(e));
	close(x);
	if (b >= 0) {
		int cs[NRP], na = 0, nb = 0;
		for (int i = 0; i < NRP; i++)
			cs[i] = connect_to(&sa);
		set_nonblock(a, 1);
		set_nonblock(b, 1);
		double end = now_ms() + IO_MS;
		while (na + nb < NRP && now_ms() < end) {
			struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
			poll(p, 2, 100);
			int fa, fb;
			while ((fa = accept(a, NULL, NULL)) >= 0) {
				na++;
				close(fa);
			}
			while ((fb = accept(b, NULL, NULL)) >= 0) {
				nb++;
				close(fb);
			}
		}
		CHECK("reuseport_all_accepted", na + nb == NRP, "accepted %d+%d of %d", na, nb, NRP);
		CHECK("reuseport_both_listeners_serve", na > 0 && nb > 0, "first got %d, second got %d", na, nb);
		for (int i = 0; i < NRP; i++)
			if (cs[i] >= 0)
				close(cs[i]);
		close(b);
	}
	close(a);

	/* Restart a server on its port: the server closed first (TIME_WAIT on
	 * its side); SO_REUSEADDR lets the new listener bind anyway. */
	mkaddr(&sa, ip, 0);
	int l = listen_on(&sa, 4, 0, NULL);
	get_local(l, &sa);
	int c = connect_to(&sa);
	int s = accept(l, NULL, NULL);
	close(s);
	wait_eof(c, IO_MS);
	close(c);
	close(l);
	sleep_ms(20);
	l = listen_on(&sa, 4, 0, NULL);
	CHECK("reuseaddr_rebind_after_close", l >= 0, "listen again on %s: %s", SA(&sa), strerror(errno));
	if (l >= 0)
		close(l);
}

int main(int argc, char **argv)
{
	static const struct prog p = {.name = "sockopts",
				      .alarm_s = 10,
				      .client = client,
				      .local = local,
				      .hooks = &hooks,
				      .setup_listener = setup_listener};
	return prog_main(argc, argv, &p);
}
