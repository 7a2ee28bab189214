/* Non-blocking connect made three ways (fcntl, ioctl FIONBIO, SOCK_NONBLOCK):
 * EINPROGRESS, POLLOUT, SO_ERROR==0, the flag survives; refusal reported
 * later through SO_ERROR (and read from the right socket). */
#include "common.h"

enum how { FCNTL, IOCTL, SOCKFLAG };

static void nb_connect(const char *tag, enum how how, const sin4 *target)
{
	char name[96], err[256];
#define NAME(s) (snprintf(name, sizeof name, "%s_%s", tag, s), name)
	int fd = socket(AF_INET, SOCK_STREAM | (how == SOCKFLAG ? SOCK_NONBLOCK : 0), 0);
	if (how == FCNTL) {
		int fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	} else if (how == IOCTL) {
		int one = 1;
		ioctl(fd, FIONBIO, &one);
	}
	CHECK(NAME("flag_before"), is_nonblock(fd), "O_NONBLOCK not in F_GETFL before connect");
	int r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	int e = errno;
	CHECK(NAME("einprogress"), r < 0 && e == EINPROGRESS, "connect: r=%d errno=%s (want EINPROGRESS)", r,
	      r < 0 ? strerror(e) : "none");
	/* Calling connect again while (or after) it completes. */
	r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	e = errno;
	/* Linux: EALREADY while connecting, 0 if it completed meanwhile. */
	CHECK(NAME("connect_again_ealready_or_0"), r == 0 || (r < 0 && e == EALREADY), "second connect: r=%d %s", r,
	      r < 0 ? strerror(e) : "");
	int ev = wait_ev(fd, POLLOUT, IO_MS);
	CHECK(NAME("pollout"), ev > 0 && (ev & POLLOUT) && !(ev & (POLLERR | POLLHUP)), "poll revents=%#x", ev);
	int se = so_error(fd);
	CHECK(NAME("so_error_zero"), se == 0, "SO_ERROR=%d (%s)", se, strerror(se > 0 ? se : 0));
	/* After completion: 0 (first report) or EISCONN (already reported), then EISCONN. */
	r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	e = errno;
	CHECK(NAME("connect_after_completion"), r == 0 || (r < 0 && e == EISCONN), "connect after POLLOUT: r=%d %s",
	      r, r < 0 ? strerror(e) : "");
	r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	e = errno;
	CHECK(NAME("connect_then_eisconn"), r < 0 && e == EISCONN, "connect once more: r=%d %s", r,
	      r < 0 ? strerror(e) : "");
	CHECK(NAME("flag_after"), is_nonblock(fd), "O_NONBLOCK lost after connect");
	print_addr("client", fd, NULL);
	struct hello h;
	r = read_hello(fd, &h, err, sizeof err);
	CHECK(NAME("hello"), r == 0, "%s", err);
	if (r == 0)
		CHECK(NAME("names_crosswise"), hello_matches(fd, &h, err, sizeof err) == 0, "%s", err);
	/* Nothing more is pending: a non-blocking read must say EAGAIN. */
	char c;
	ssize_t n = read(fd, &c, 1);
	e = errno;
	CHECK(NAME("read_eagain"), n < 0 && (e == EAGAIN || e == EWOULDBLOCK), "read on idle socket: n=%zd %s", n,
	      n < 0 ? strerror(e) : "data");
	CHECK(NAME("echo"), echo_roundtrip(fd, fd, 200000, 20000, 9, err, sizeof err) == 0, "%s", err);
	/* Switch back to blocking: reads block (bounded by the server's echo). */
	if (how == IOCTL) {
		int zero = 0;
		ioctl(fd, FIONBIO, &zero);
	} else {
		set_nonblock(fd, 0);
	}
	CHECK(NAME("blocking_again"), !is_nonblock(fd), "O_NONBLOCK still set after clearing");
	char buf[4] = "abc";
	if (write_n(fd, buf, 3, IO_MS) == 3) {
		char in[4] = {0};
		n = read(fd, in, 3); /* blocking; the echo is on its way */
		CHECK(NAME("blocking_read"), n > 0 && memcmp(in, buf, (size_t)n) == 0, "blocking read: n=%zd", n);
	} else {
		check_fail(NAME("blocking_read"), "write: %s", strerror(errno));
	}
	close(fd);
#undef NAME
}

static void refused_nb(const char *tag, const sin4 *refused, int use_ioctl)
{
	char name[96];
#define NAME(s) (snprintf(name, sizeof name, "%s_%s", tag, s), name)
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (use_ioctl) {
		int one = 1;
		ioctl(fd, FIONBIO, &one);
	} else {
		set_nonblock(fd, 1);
	}
	int r = connect(fd, (const struct sockaddr *)refused, sizeof *refused);
	int e = errno;
	CHECK(NAME("einprogress"), r < 0 && e == EINPROGRESS, "connect: r=%d %s", r, r < 0 ? strerror(e) : "none");
	int ev = wait_ev(fd, POLLOUT, IO_MS);
	CHECK(NAME("poll_err"), ev > 0 && (ev & (POLLERR | POLLHUP)), "poll revents=%#x (want POLLERR/POLLHUP)", ev);
	int se = so_error(fd);
	CHECK(NAME("so_error_econnrefused"), se == ECONNREFUSED, "SO_ERROR=%d (%s), want ECONNREFUSED", se,
	      strerror(se > 0 ? se : 0));
	se = so_error(fd);
	CHECK(NAME("so_error_cleared"), se == 0, "second SO_ERROR read = %d, want 0", se);
	sin4 p;
	r = get_peer(fd, &p);
	e = errno;
	CHECK(NAME("getpeername_enotconn"), r < 0 && e == ENOTCONN, "getpeername: r=%d %s", r,
	      r < 0 ? strerror(e) : SA(&p));
	close(fd);
#undef NAME
}

static struct hello last;

static void client(const sin4 *target, const sin4 *refused)
{
	char err[256];
	nb_connect("fcntl", FCNTL, target);
	nb_connect("ioctl", IOCTL, target);
	nb_connect("sockflag", SOCKFLAG, target);
	refused_nb("refused_fcntl", refused, 0);
	refused_nb("refused_ioctl", refused, 1);
	/* Non-blocking refusal seen through a non-blocking read instead of SO_ERROR. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	connect(fd, (const struct sockaddr *)refused, sizeof *refused);
	wait_ev(fd, POLLIN, IO_MS);
	char c;
	ssize_t n = read(fd, &c, 1);
	int e = errno;
	CHECK("refused_read_econnrefused", n < 0 && e == ECONNREFUSED, "read after refused connect: n=%zd %s", n,
	      n < 0 ? strerror(e) : "data/EOF");
	close(fd);
	int c2 = connect_hello(target, &last, err, sizeof err);
	CHECK("final_connect", c2 >= 0, "%s", err);
	if (c2 >= 0) {
		close(c2);
		check_server_clean(&last);
	}
}

int main(int argc, char **argv)
{
	static const struct prog p = {.name = "connect_nonblock", .alarm_s = 10, .client = client};
	return prog_main(argc, argv, &p);
}
