/* poll, ppoll, select and pselect on a connecting socket (writable when
 * connected; error when refused) and on a listening socket (readable when a
 * client arrives; revents land at the right index). Server mode is a poll()
 * loop over the (blocking) listener and its connections, which it echoes. */
#include "common.h"
#include <sys/select.h>

static int start_nb(const sin4 *to)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int r = connect(fd, (const struct sockaddr *)to, sizeof *to);
	if (r < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* select for one fd: returns mask 1=read 2=write 4=except, 0 timeout, -1 error. */
static int sel(int fd, int want_r, int want_w, int ms, int use_pselect)
{
	fd_set r, w, x;
	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_ZERO(&x);
	if (want_r)
		FD_SET(fd, &r);
	if (want_w)
		FD_SET(fd, &w);
	FD_SET(fd, &x);
	int n;
	if (use_pselect) {
		struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
		sigset_t none;
		sigemptyset(&none);
		n = pselect(fd + 1, &r, &w, &x, &ts, &none);
	} else {
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		n = select(fd + 1, &r, &w, &x, &tv);
	}
	if (n <= 0)
		return n;
	return (FD_ISSET(fd, &r) ? 1 : 0) | (FD_ISSET(fd, &w) ? 2 : 0) | (FD_ISSET(fd, &x) ? 4 : 0);
}

static void connecting(const char *tag, int kind, const sin4 *target, struct hello *h)
{
	char name[96], err[256];
#define NAME(s) (snprintf(name, sizeof name, "%s_%s", tag, s), name)
	int fd = start_nb(target);
	CHECK(NAME("start"), fd >= 0, "connect: %s", strerror(errno));
	if (fd < 0)
		return;
	int ready = 0, rd = 0;
	if (kind == 0 || kind == 1) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		struct timespec ts = {IO_MS / 1000, 0};
		int n = kind == 0 ? poll(&p, 1, IO_MS) : ppoll(&p, 1, &ts, NULL);
		ready = n == 1 && (p.revents & POLLOUT) && !(p.revents & (POLLERR | POLLHUP));
		CHECK(NAME("writable"), ready, "n=%d revents=%#x", n, p.revents);
		p.events = POLLIN;
		n = kind == 0 ? poll(&p, 1, IO_MS) : ppoll(&p, 1, &ts, NULL);
		rd = n == 1 && (p.revents & POLLIN);
		CHECK(NAME("readable_hello"), rd, "n=%d revents=%#x", n, p.revents);
	} else {
		int m = sel(fd, 0, 1, IO_MS, kind == 3);
		CHECK(NAME("writable"), m == 2, "select mask=%d (want write only)", m);
		m = sel(fd, 1, 0, IO_MS, kind == 3);
		CHECK(NAME("readable_hello"), m == 1, "select mask=%d (want read only)", m);
	}
	CHECK(NAME("so_error_zero"), so_error(fd) == 0, "SO_ERROR=%d", so_error(fd));
	int r = read_hello(fd, h, err, sizeof err);
	CHECK(NAME("hello"), r == 0 && hello_matches(fd, h, err, sizeof err) == 0, "%s", err);
	if (kind == 0)
		print_addr("client", fd, NULL);
	close(fd);
#undef NAME
}

static void refused_case(const char *tag, int use_select, const sin4 *refused)
{
	char name[96];
#define NAME(s) (snprintf(name, sizeof name, "%s_%s", tag, s), name)
	int fd = start_nb(refused);
	if (fd < 0) { /* refused synchronously is also legal */
		check_ok_q(0, NAME("reported"));
		return;
	}
	if (use_select) {
		int m = sel(fd, 0, 1, IO_MS, 0);
		CHECK(NAME("reported"), m > 0 && (m & 2), "select mask=%d (want writable)", m);
	} else {
		int ev = wait_ev(fd, POLLOUT, IO_MS);
		CHECK(NAME("reported"), ev > 0 && (ev & (POLLERR | POLLHUP)), "revents=%#x", ev);
	}
	int se = so_error(fd);
	CHECK(NAME("so_error_econnrefused"), se == ECONNREFUSED, "SO_ERROR=%d (%s)", se, strerror(se > 0 ? se : 0));
	close(fd);
#undef NAME
}

static struct hello last;

/* The server's poll() loop echoes on a connection it accepted while
 * nothing else waits in its listener: the listener is not readable then,
 * so the loop does not go into a blocking accept (and wait there, with the
 * connection unserved, for the next client). */
static void echo_between_clients(const sin4 *target)
{
	char err[256];
	struct hello h;
	int fd = connect_hello(target, &h, err, sizeof err);
	CHECK("poll_loop_connects", fd >= 0, "%s", err);
	if (fd < 0)
		return;
	int r = echo_roundtrip(fd, fd, 8192, 1024, 5, err, sizeof err);
	CHECK("poll_loop_echoes", r == 0, "%s", err);
	close(fd);
}

static void client(const sin4 *target, const sin4 *refused)
{
	echo_between_clients(target);
	connecting("poll", 0, target, &last);
	connecting("ppoll", 1, target, &last);
	connecting("select", 2, target, &last);
	connecting("pselect", 3, target, &last);
	refused_case("refused_poll", 0, refused);
	refused_case("refused_select", 1, refused);
	check_server_clean(&last);
}

/* A listener among other fds: only its slot becomes readable. */
static void listener_case(const char *ip, int use_select)
{
	char name[96];
	const char *tag = use_select ? "select_listener" : "poll_listener";
#define NAME(s) (snprintf(name, sizeof name, "%s_%s", tag, s), name)
	int lfd = listen_ip(ip, 0, 16);
	int pa[2], pb[2];
	if (lfd < 0 || pipe(pa) < 0 || pipe(pb) < 0) {
		check_fail(NAME("setup"), "%s", strerror(errno));
		return;
	}
	sin4 la;
	get_local(lfd, &la);
	int c = -1;
	for (int round = 0; round < 2; round++) {
		int n, lr = 0, others = 0;
		if (use_select) {
			fd_set r;
			FD_ZERO(&r);
			FD_SET(pa[0], &r);
			FD_SET(lfd, &r);
			FD_SET(pb[0], &r);
			int mx = lfd > pa[0] ? lfd : pa[0];
			mx = mx > pb[0] ? mx : pb[0];
			struct timeval tv = round ? (struct timeval){IO_MS / 1000, 0} : (struct timeval){0, 100000};
			n = select(mx + 1, &r, NULL, NULL, &tv);
			lr = n > 0 && FD_ISSET(lfd, &r);
			others = n > 0 && (FD_ISSET(pa[0], &r) || FD_ISSET(pb[0], &r));
		} else {
			struct pollfd p[3] = {{.fd = pa[0], .events = POLLIN},
					      {.fd = lfd, .events = POLLIN},
					      {.fd = pb[0], .events = POLLIN}};
			n = poll(p, 3, round ? IO_MS : 100);
			lr = n > 0 && p[1].revents == POLLIN;
			others = p[0].revents || p[2].revents;
		}
		if (round == 0) {
			CHECK(NAME("idle"), n == 0, "n=%d with no client", n);
			c = connect_to(&la);
			CHECK(NAME("client_connects"), c >= 0, "connect %s: %s", SA(&la), strerror(errno));
		} else {
			CHECK(NAME("readable"), n == 1 && lr && !others, "n=%d listener=%d others=%d", n, lr, others);
		}
	}
	int a = accept(lfd, NULL, NULL);
	CHECK(NAME("accept"), a >= 0, "accept: %s", strerror(errno));
	if (a >= 0)
		close(a);
	if (c >= 0)
		close(c);
	close(lfd);
	close(pa[0]);
	close(pa[1]);
	close(pb[0]);
	close(pb[1]);
#undef NAME
}

static void local(const char *ip)
{
	listener_case(ip, 0);
	listener_case(ip, 1);
}

/* Server: a poll() loop; slot 0 is the listener. */
#define MAXC 256
static void poll_server(int lfd, long maxconns)
{
	struct pollfd p[MAXC + 1];
	int n = 1;
	long idx = 0, closed = 0;
	p[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
	while (maxconns <= 0 || closed < maxconns) {
		int r = poll(p, (nfds_t)n, 1000);
		if (r <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			sin4 acc;
			socklen_t alen = sizeof acc;
			int c = accept(lfd, (struct sockaddr *)&acc, &alen);
			CHECKQ(idx >= 4, "srv_poll_listener_accept", c >= 0, "POLLIN on listener, accept: %s",
			       strerror(errno));
			if (c >= 0 && n <= MAXC) {
				srv_check_accepted(c, &acc, alen == sizeof acc, idx++);
				send_hello(c);
				p[n++] = (struct pollfd){.fd = c, .events = POLLIN};
			} else if (c >= 0) {
				close(c);
			}
		}
		for (int i = 1; i < n; i++) {
			if (!p[i].revents)
				continue;
			char buf[65536];
			ssize_t got = read(p[i].fd, buf, sizeof buf);
			if (got < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (got > 0 && write_n(p[i].fd, buf, (size_t)got, IO_MS) == got)
				continue;
			close(p[i].fd);
			p[i--] = p[--n];
			closed++;
		}
	}
}

int main(int argc, char **argv)
{
	static const struct prog p = {
		.name = "pollselect", .alarm_s = 10, .client = client, .local = local, .server = poll_server};
	return prog_main(argc, argv, &p);
}
