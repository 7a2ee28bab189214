/* epoll around connection setup: registration before connect (EPOLLOUT with
 * the right data, no stale or duplicate events), MOD to EPOLLIN, one fd in
 * several epoll sets, edge-triggered and one-shot, close removes the
 * registration, and a listener in epoll (also added before listen()).
 * Server mode is an epoll event loop (listener + connections in one set). */
#include "common.h"
#include <sys/epoll.h>

#define TAG_A 0xA11CE0001ULL
#define TAG_B 0xB0B000002ULL

/* epoll_wait with a bound; retries EINTR. */
static int ewait(int ep, struct epoll_event *evs, int max, int ms)
{
	double end = now_ms() + ms;
	for (;;) {
		int left = (int)(end - now_ms());
		int n = epoll_wait(ep, evs, max, left < 0 ? 0 : left);
		if (n < 0 && errno == EINTR)
			continue;
		return n;
	}
}

static int ctl(int ep, int op, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};
	return epoll_ctl(ep, op, fd, &ev);
}

static void before_connect(const sin4 *target, struct hello *h)
{
	char err[256];
	struct epoll_event evs[8];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK("add_before_connect", ctl(ep, EPOLL_CTL_ADD, fd, EPOLLOUT, TAG_A) == 0, "epoll_ctl ADD: %s",
	      strerror(errno));
	int r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	int e = errno;
	CHECK("connect_einprogress", r < 0 && e == EINPROGRESS, "connect: r=%d %s", r, strerror(e));
	/* Wait for the connected EPOLLOUT (a not-yet-connected socket may report
	 * EPOLLOUT|EPOLLHUP before connect(); afterwards that is gone). */
	int n = 0, good = 0, bad = 0;
	uint32_t last = 0;
	double end = now_ms() + IO_MS;
	while (!good && !bad && now_ms() < end) {
		n = ewait(ep, evs, 8, 200);
		for (int i = 0; i < n; i++) {
			last = evs[i].events;
			if (evs[i].data.u64 != TAG_A || (evs[i].events & (EPOLLERR | EPOLLHUP)))
				bad++;
			else if (evs[i].events & EPOLLOUT)
				good++;
		}
	}
	CHECK("epollout_after_connect", good == 1 && bad == 0 && n == 1,
	      "n=%d good=%d bad(stale data or HUP/ERR)=%d last events=%#x", n, good, bad, last);
	int se = so_error(fd);
	CHECK("so_error_zero", se == 0, "SO_ERROR=%d (%s)", se, strerror(se > 0 ? se : 0));
	if (good != 1 || se != 0) {
		close(fd);
		close(ep);
		return;
	}
	print_addr("client", fd, NULL);
	r = ctl(ep, EPOLL_CTL_ADD, fd, EPOLLIN, TAG_B);
	e = errno;
	CHECK("add_again_eexist", r < 0 && e == EEXIST, "second ADD after connect: r=%d %s", r, strerror(e));
	CHECK("mod_to_epollin", ctl(ep, EPOLL_CTL_MOD, fd, EPOLLIN, TAG_B) == 0, "MOD: %s", strerror(errno));
	n = ewait(ep, evs, 8, IO_MS); /* HELLO arrives */
	CHECK("epollin_after_mod", n == 1 && evs[0].data.u64 == TAG_B && (evs[0].events & EPOLLIN) &&
					   !(evs[0].events & EPOLLOUT),
	      "n=%d data=%#llx events=%#x", n, n > 0 ? (unsigned long long)evs[0].data.u64 : 0ULL,
	      n > 0 ? evs[0].events : 0);
	r = read_hello(fd, h, err, sizeof err);
	CHECK("hello", r == 0 && hello_matches(fd, h, err, sizeof err) == 0, "%s", err);
	n = ewait(ep, evs, 8, 100);
	CHECK("no_event_when_drained", n == 0, "n=%d events=%#x", n, n > 0 ? evs[0].events : 0);
	write_n(fd, "ping", 4, IO_MS);
	n = ewait(ep, evs, 8, IO_MS);
	char buf[8] = {0};
	ssize_t got = n == 1 ? read_n(fd, buf, 4, IO_MS) : -1;
	CHECK("epollin_echo", n == 1 && evs[0].data.u64 == TAG_B && got == 4 && memcmp(buf, "ping", 4) == 0,
	      "n=%d got=%zd", n, got);
	CHECK("del", ctl(ep, EPOLL_CTL_DEL, fd, 0, 0) == 0, "DEL: %s", strerror(errno));
	r = ctl(ep, EPOLL_CTL_DEL, fd, 0, 0);
	e = errno;
	CHECK("del_again_enoent", r < 0 && e == ENOENT, "second DEL: r=%d %s", r, strerror(e));
	/* Registered again, then closed: the registration must vanish with the fd. */
	ctl(ep, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT, TAG_A);
	n = ewait(ep, evs, 8, 100);
	CHECK("readd_writable", n == 1 && (evs[0].events & EPOLLOUT), "n=%d", n);
	close(fd);
	n = ewait(ep, evs, 8, 200);
	CHECK("close_removes_registration", n == 0, "%d events after close(fd), data=%#llx events=%#x", n,
	      n > 0 ? (unsigned long long)evs[0].data.u64 : 0ULL, n > 0 ? evs[0].events : 0);
	close(ep);
}

static void two_sets(const sin4 *target)
{
	char err[256];
	struct epoll_event ev1[4], ev2[4], ev3[4];
	int ep1 = epoll_create1(0), ep2 = epoll_create1(0), ep3 = epoll_create1(0);
	int fd = socket(AF_INET, SOCK_STREAM, 0); /* blocking connect this time */
	int a = ctl(ep1, EPOLL_CTL_ADD, fd, EPOLLIN, 1);
	int b = ctl(ep2, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP, 2);
	CHECK("two_sets_add", a == 0 && b == 0, "ADD: %s", strerror(errno));
	int r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	CHECK("two_sets_connect", r == 0, "connect: %s", strerror(errno));
	if (r < 0) {
		close(fd);
		return;
	}
	CHECK("third_set_after_connect", ctl(ep3, EPOLL_CTL_ADD, fd, EPOLLIN, 3) == 0, "ADD: %s", strerror(errno));
	int n1 = ewait(ep1, ev1, 4, IO_MS), n2 = ewait(ep2, ev2, 4, IO_MS), n3 = ewait(ep3, ev3, 4, IO_MS);
	CHECK("two_sets_both_report", n1 == 1 && ev1[0].data.u64 == 1 && n2 == 1 && ev2[0].data.u64 == 2,
	      "set1 n=%d data=%llu, set2 n=%d data=%llu", n1, n1 > 0 ? (unsigned long long)ev1[0].data.u64 : 0ULL,
	      n2, n2 > 0 ? (unsigned long long)ev2[0].data.u64 : 0ULL);
	CHECK("third_set_reports", n3 == 1 && ev3[0].data.u64 == 3, "n=%d", n3);
	struct hello h;
	r = read_hello(fd, &h, err, sizeof err);
	CHECK("two_sets_hello", r == 0, "%s", err);
	/* EOF: shut our side, the server closes, set 2 sees EPOLLRDHUP. */
	shutdown(fd, SHUT_WR);
	n2 = ewait(ep2, ev2, 4, IO_MS);
	CHECK("two_sets_rdhup", n2 == 1 && (ev2[0].events & EPOLLRDHUP), "n=%d events=%#x", n2,
	      n2 > 0 ? ev2[0].events : 0);
	close(fd);
	close(ep1);
	close(ep2);
	close(ep3);
}

static void edge_triggered(const sin4 *target)
{
	char err[256];
	struct epoll_event evs[4];
	int ep = epoll_create1(0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ctl(ep, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT | EPOLLET, 7);
	connect(fd, (const struct sockaddr *)target, sizeof *target);
	/* Read the HELLO on edges, draining to EAGAIN each time. */
	char line[256];
	size_t len = 0;
	int have_line = 0, events = 0, badtag = 0;
	double end = now_ms() + IO_MS;
	while (!have_line && now_ms() < end) {
		int n = ewait(ep, evs, 4, 200);
		for (int i = 0; i < n; i++) {
			events++;
			if (evs[i].data.u64 != 7)
				badtag++;
		}
		for (;;) {
			ssize_t r = read(fd, line + len, sizeof line - 1 - len);
			if (r <= 0)
				break;
			len += (size_t)r;
			line[len] = 0;
			if (strchr(line, '\n'))
				have_line = 1;
		}
	}
	struct hello h;
	CHECK("et_hello", have_line && parse_hello(line, &h) == 0 && badtag == 0, "line=%d badtag=%d events=%d",
	      have_line, badtag, events);
	if (!have_line) {
		close(fd);
		close(ep);
		return;
	}
	int n = ewait(ep, evs, 4, 150);
	CHECK("et_no_repeat_when_drained", n == 0, "n=%d events=%#x", n, n > 0 ? evs[0].events : 0);
	write_n(fd, "et", 2, IO_MS);
	n = ewait(ep, evs, 4, IO_MS);
	CHECK("et_new_data_edge", n == 1 && (evs[0].events & EPOLLIN) && evs[0].data.u64 == 7, "n=%d", n);
	char buf[4];
	read_n(fd, buf, 2, IO_MS);
	(void)read(fd, buf, sizeof buf); /* drain to EAGAIN */
	/* One-shot: one event, then silent until re-armed with MOD. */
	ctl(ep, EPOLL_CTL_MOD, fd, EPOLLIN | EPOLLONESHOT, 8);
	write_n(fd, "o1", 2, IO_MS);
	n = ewait(ep, evs, 4, IO_MS);
	int n2 = ewait(ep, evs, 4, 150);
	CHECK("oneshot_once", n == 1 && n2 == 0, "first n=%d, second n=%d (want 1, 0)", n, n2);
	ctl(ep, EPOLL_CTL_MOD, fd, EPOLLIN | EPOLLONESHOT, 9);
	n = ewait(ep, evs, 4, IO_MS);
	CHECK("oneshot_rearm", n == 1 && evs[0].data.u64 == 9, "n=%d", n);
	CHECK("et_echo_still_ok", read_n(fd, buf, 2, IO_MS) == 2 && memcmp(buf, "o1", 2) == 0, "echo lost");
	(void)err;
	close(fd);
	close(ep);
}

static struct hello last;

static void client(const sin4 *target, const sin4 *refused)
{
	(void)refused;
	before_connect(target, &last);
	two_sets(target);
	edge_triggered(target);
	check_server_clean(&last);
}

/* Listener readiness through epoll; one variant added before listen(). */
static void listener_case(const char *ip, int add_before_listen)
{
	char name[96];
	const char *tag = add_before_listen ? "listener_added_before_listen" : "listener";
#define NAME(s) (snprintf(name, sizeof name, "%s_%s", tag, s), name)
	struct epoll_event evs[4];
	sin4 sa;
	mkaddr(&sa, ip, 0);
	int ep = epoll_create1(0);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	bind(lfd, (struct sockaddr *)&sa, sizeof sa);
	if (add_before_listen)
		ctl(ep, EPOLL_CTL_ADD, lfd, EPOLLIN, 0x1157);
	CHECK(NAME("listen"), listen(lfd, 16) == 0, "listen: %s", strerror(errno));
	if (!add_before_listen)
		ctl(ep, EPOLL_CTL_ADD, lfd, EPOLLIN, 0x1157);
	int n = ewait(ep, evs, 4, 100);
	CHECK(NAME("idle"), n == 0, "n=%d events=%#x with no client", n, n > 0 ? evs[0].events : 0);
	sin4 la;
	get_local(lfd, &la);
	int c = connect_to(&la);
	CHECK(NAME("client_connects"), c >= 0, "connect %s: %s", SA(&la), strerror(errno));
	n = ewait(ep, evs, 4, IO_MS);
	CHECK(NAME("epollin"), n == 1 && evs[0].data.u64 == 0x1157 && evs[0].events == EPOLLIN,
	      "n=%d data=%#llx events=%#x", n, n > 0 ? (unsigned long long)evs[0].data.u64 : 0ULL,
	      n > 0 ? evs[0].events : 0);
	sin4 acc;
	socklen_t alen = sizeof acc;
	int a = accept4(lfd, (struct sockaddr *)&acc, &alen, SOCK_CLOEXEC);
	sin4 cl;
	get_local(c, &cl);
	CHECK(NAME("accept"), a >= 0 && sa_eq(&acc, &cl), "accept: %s, addr %s vs client %s",
	      a < 0 ? strerror(errno) : "ok", SA(&acc), SA(&cl));
	int a2 = accept(lfd, NULL, NULL);
	int e = errno;
	CHECK(NAME("accept_eagain"), a2 < 0 && (e == EAGAIN || e == EWOULDBLOCK), "second accept: %d %s", a2,
	      strerror(e));
	n = ewait(ep, evs, 4, 100);
	CHECK(NAME("idle_again"), n == 0, "n=%d after draining", n);
	if (a >= 0)
		close(a);
	if (c >= 0)
		close(c);
	close(lfd);
	close(ep);
#undef NAME
}

static void local(const char *ip)
{
	listener_case(ip, 0);
	listener_case(ip, 1);
}

/* Server: one epoll set for the listener and all connections. */
#define MAXFD 4096
static void epoll_server(int lfd, long maxconns)
{
	static unsigned char open_fd[MAXFD];
	struct epoll_event evs[64];
	long idx = 0, closed = 0;
	set_nonblock(lfd, 1);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	ctl(ep, EPOLL_CTL_ADD, lfd, EPOLLIN, UINT64_MAX);
	while (maxconns <= 0 || closed < maxconns) {
		int n = ewait(ep, evs, 64, 1000);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == UINT64_MAX) {
				int got = 0;
				for (;;) {
					sin4 acc;
					socklen_t alen = sizeof acc;
					int c = accept4(lfd, (struct sockaddr *)&acc, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
					if (c < 0)
						break;
					got++;
					if (c >= MAXFD) {
						close(c);
						continue;
					}
					srv_check_accepted(c, &acc, alen == sizeof acc, idx);
					CHECKQ(idx >= 4, "srv_accept4_nonblock", is_nonblock(c) && is_cloexec(c),
					       "accept4 flags lost");
					idx++;
					open_fd[c] = 1;
					send_hello(c);
					ctl(ep, EPOLL_CTL_ADD, c, EPOLLIN, (uint64_t)c);
				}
				CHECKQ(idx >= 4, "srv_listener_event_not_spurious", got > 0,
				       "EPOLLIN on the listener but accept had nothing (%s)", strerror(errno));
				continue;
			}
			int c = (int)evs[i].data.u64;
			if (c < 0 || c >= MAXFD || !open_fd[c]) {
				check_fail("srv_event_for_closed_fd", "event %#x for fd %d that is not open",
					   evs[i].events, c);
				continue;
			}
			char buf[65536];
			ssize_t r = read(c, buf, sizeof buf);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r > 0 && write_n(c, buf, (size_t)r, IO_MS) == r)
				continue;
			ctl(ep, EPOLL_CTL_DEL, c, 0, 0);
			open_fd[c] = 0;
			close(c);
			closed++;
		}
	}
	close(ep);
}

int main(int argc, char **argv)
{
	static const struct prog p = {
		.name = "epoll", .alarm_s = 10, .client = client, .local = local, .server = epoll_server};
	return prog_main(argc, argv, &p);
}
