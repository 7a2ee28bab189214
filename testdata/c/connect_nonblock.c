/* Non-blocking connect made three ways (fcntl, ioctl FIONBIO, SOCK_NONBLOCK):
 * EINPROGRESS, POLLOUT, SO_ERROR==0, the flag survives; refusal reported
 * later through SO_ERROR (and read from the right socket). The flag set by
 * another process sharing the socket (fork, SCM_RIGHTS) or cleared after
 * SOCK_NONBLOCK is followed too. */
#include "common.h"

#include <spawn.h>

extern char **environ;

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

/*
 * O_NONBLOCK changed where this process's own fcntl does not see it: by a
 * child the socket was shared with by fork, or by a process it was passed
 * to over a unix socket (SCM_RIGHTS); or cleared again after
 * SOCK_NONBLOCK. connect must follow the flag as the kernel holds it: a
 * non-blocking one says EINPROGRESS, a blocking one returns 0 connected.
 */
enum shared_how { SH_FORK, SH_PASSED, SH_SPAWNED, SH_CLEARED, SH_CLEARED_IOCTL };

/* A program started with posix_spawnp sets O_NONBLOCK on fd (as its fd 3). */
static int spawn_sets_nonblock(int fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fd, 3);
	char *argv[] = {"python3", "-c",
			"import fcntl, os; fcntl.fcntl(3, fcntl.F_SETFL, fcntl.fcntl(3, fcntl.F_GETFL) | os.O_NONBLOCK)",
			NULL};
	pid_t pid;
	int r = posix_spawnp(&pid, "python3", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	int st;
	if (r != 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	return 0;
}

static int made_nonblock_elsewhere(enum shared_how how)
{
	int sp[2] = {-1, -1};
	if (how == SH_PASSED && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -1;
	int fd = -1;
	if (how == SH_SPAWNED) {
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (spawn_sets_nonblock(fd) < 0) {
			close(fd);
			return -1;
		}
		return fd;
	}
	if (how == SH_FORK)
		fd = socket(AF_INET, SOCK_STREAM, 0); /* made before the fork: shared */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (how == SH_PASSED) {
			int got = recv_fd(sp[1]);
			if (got < 0 || set_nonblock(got, 1) < 0 || write(sp[1], "k", 1) != 1)
				_exit(1);
			_exit(0);
		}
		_exit(set_nonblock(fd, 1) < 0 ? 1 : 0);
	}
	if (how == SH_PASSED) {
		/* Made after the fork, then handed over. */
		fd = socket(AF_INET, SOCK_STREAM, 0);
		char k;
		if (send_fd(sp[0], fd) < 0 || read_n(sp[0], &k, 1, IO_MS) != 1) {
			close(fd);
			fd = -1;
		}
		close(sp[0]);
		close(sp[1]);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void nonblock_set_elsewhere(const char *tag, enum shared_how how, const sin4 *target)
{
	char name[96], err[256];
#define NAME(s) (snprintf(name, sizeof name, "%s_%s", tag, s), name)
	int fd;
	if (how == SH_CLEARED || how == SH_CLEARED_IOCTL) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		int zero = 0;
		if (how == SH_CLEARED)
			set_nonblock(fd, 0);
		else
			ioctl(fd, FIONBIO, &zero);
	} else {
		fd = made_nonblock_elsewhere(how);
	}
	if (fd < 0) {
		check_fail(NAME("setup"), "%s", strerror(errno));
		return;
	}
	int nb = how == SH_FORK || how == SH_PASSED || how == SH_SPAWNED;
	CHECK(NAME("flag_before"), is_nonblock(fd) == nb, "O_NONBLOCK %s before connect",
	      nb ? "not set" : "still set");
	int r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	int e = errno;
	if (nb)
		CHECK(NAME("einprogress"), r < 0 && e == EINPROGRESS, "connect: r=%d errno=%s (want EINPROGRESS)",
		      r, r < 0 ? strerror(e) : "none");
	else
		CHECK(NAME("connected"), r == 0, "connect: r=%d errno=%s (want 0: blocking)", r,
		      r < 0 ? strerror(e) : "none");
	if (nb) {
		int ev = wait_ev(fd, POLLOUT, IO_MS);
		CHECK(NAME("pollout"), ev > 0 && (ev & POLLOUT) && !(ev & (POLLERR | POLLHUP)), "poll revents=%#x",
		      ev);
	}
	struct hello h;
	r = read_hello(fd, &h, err, sizeof err);
	CHECK(NAME("hello"), r == 0, "%s", err);
	if (r == 0)
		CHECK(NAME("names_crosswise"), hello_matches(fd, &h, err, sizeof err) == 0, "%s", err);
	close(fd);
#undef NAME
}

/* The other way round: the parent sets O_NONBLOCK after fork, the child connects. */
static void forked_child_connects(const sin4 *target)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int sp[2];
	if (fd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		check_fail("parent_sets_child_connects", "setup: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		char k;
		if (read_n(sp[1], &k, 1, IO_MS) != 1)
			_exit(10);
		int r = connect(fd, (const struct sockaddr *)target, sizeof *target);
		if (!(r < 0 && errno == EINPROGRESS))
			_exit(11); /* a blocking connect */
		struct hello h;
		char err[256];
		if (wait_ev(fd, POLLOUT, IO_MS) <= 0 || read_hello(fd, &h, err, sizeof err) != 0)
			_exit(12);
		_exit(0);
	}
	set_nonblock(fd, 1);
	if (write(sp[0], "k", 1) != 1)
		check_fail("parent_sets_child_connects", "write: %s", strerror(errno));
	int st = 0;
	int r = pid < 0 ? -1 : waitpid(pid, &st, 0);
	CHECK("parent_sets_child_connects_einprogress", r == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "child exit %d (11: its connect blocked though the parent made the socket non-blocking)",
	      WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	close(sp[0]);
	close(sp[1]);
	close(fd);
}

static struct hello last;

static void client(const sin4 *target, const sin4 *refused)
{
	char err[256];
	nb_connect("fcntl", FCNTL, target);
	nb_connect("ioctl", IOCTL, target);
	nb_connect("sockflag", SOCKFLAG, target);
	nonblock_set_elsewhere("forked_child_sets", SH_FORK, target);
	nonblock_set_elsewhere("passed_receiver_sets", SH_PASSED, target);
	nonblock_set_elsewhere("spawned_program_sets", SH_SPAWNED, target);
	forked_child_connects(target);
	nonblock_set_elsewhere("sockflag_cleared_fcntl", SH_CLEARED, target);
	nonblock_set_elsewhere("sockflag_cleared_ioctl", SH_CLEARED_IOCTL, target);
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
