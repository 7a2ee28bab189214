/* dup, dup2, dup3(O_CLOEXEC), F_DUPFD_CLOEXEC of a connected socket: data
 * flows through every copy, names agree, file status flags are shared,
 * FD_CLOEXEC is per fd; closing the original keeps the copies working;
 * shutdown(SHUT_WR) on a copy gives the peer EOF while reading still works.
 * Also a dup taken BEFORE connect must see the connection (same file). */
#include "common.h"

static int names_equal(int a, int b, char *err, size_t n)
{
	sin4 la, lb, pa, pb;
	if (get_local(a, &la) || get_local(b, &lb) || get_peer(a, &pa) || get_peer(b, &pb)) {
		snprintf(err, n, "getsockname/getpeername: %s", strerror(errno));
		return 0;
	}
	if (!sa_eq(&la, &lb) || !sa_eq(&pa, &pb)) {
		snprintf(err, n, "original %s->%s, copy %s->%s", SA(&la), SA(&pa), SA(&lb), SA(&pb));
		return 0;
	}
	return 1;
}

static struct hello last;

static void client(const sin4 *target, const sin4 *refused)
{
	(void)refused;
	char err[256] = "";
	int fd = connect_hello(target, &last, err, sizeof err);
	CHECK("connect", fd >= 0, "%s", err);
	if (fd < 0)
		return;
	print_addr("client", fd, NULL);

	int d = dup(fd);
	CHECK("dup_names", d >= 0 && names_equal(fd, d, err, sizeof err), "%s", err);
	CHECK("dup_data", echo_roundtrip(d, fd, 5000, 1000, 1, err, sizeof err) == 0, "write dup, read orig: %s", err);
	CHECK("dup_no_cloexec", !is_cloexec(d), "dup() result has FD_CLOEXEC");

	/* dup2 onto a free number and onto an fd that is open (silently closed). */
	int d2 = dup2(fd, 200);
	CHECK("dup2_free_number", d2 == 200 && names_equal(fd, d2, err, sizeof err), "dup2: %d %s", d2, err);
	int devnull = open("/dev/null", O_RDONLY);
	int d2b = dup2(fd, devnull);
	CHECK("dup2_over_open_fd", d2b == devnull && names_equal(fd, d2b, err, sizeof err) &&
					   echo_roundtrip(d2b, d2b, 3000, 3000, 2, err, sizeof err) == 0,
	      "dup2 over /dev/null fd: %s", err);
	CHECK("dup2_data", echo_roundtrip(d2, d, 3000, 1500, 3, err, sizeof err) == 0, "%s", err);

	int d3 = dup3(fd, 201, O_CLOEXEC);
	CHECK("dup3_cloexec", d3 == 201 && is_cloexec(d3) && !is_cloexec(fd), "dup3: %d cloexec=%d orig=%d", d3,
	      d3 >= 0 ? is_cloexec(d3) : -1, is_cloexec(fd));
	CHECK("dup3_names_data", names_equal(fd, d3, err, sizeof err) &&
					 echo_roundtrip(d3, d3, 4000, 4000, 4, err, sizeof err) == 0,
	      "%s", err);
	int d4 = fcntl(fd, F_DUPFD_CLOEXEC, 300);
	CHECK("dupfd_cloexec", d4 >= 300 && is_cloexec(d4) && names_equal(fd, d4, err, sizeof err) &&
				       echo_roundtrip(d4, fd, 2000, 2000, 5, err, sizeof err) == 0,
	      "F_DUPFD_CLOEXEC: %d %s", d4, err);

	/* Status flags live in the shared open file: set on one, seen on all. */
	set_nonblock(fd, 1);
	int nbd = is_nonblock(d4);
	set_nonblock(d3, 0);
	int nbo = is_nonblock(fd);
	int one = 1, zero = 0;
	ioctl(d, FIONBIO, &one);
	int nbi = is_nonblock(d2);
	ioctl(d, FIONBIO, &zero);
	CHECK("status_flags_shared", nbd && !nbo && nbi, "fcntl seen on dup=%d, clear seen=%d, FIONBIO seen=%d", nbd,
	      !nbo, nbi);

	/* Close the original: the copies keep the connection. */
	close(fd);
	CHECK("close_original_dup_works", echo_roundtrip(d, d, 10000, 5000, 6, err, sizeof err) == 0, "%s", err);
	sin4 p;
	CHECK("close_original_dup_names", get_peer(d, &p) == 0 && sa_eq(&p, target), "getpeername on dup: %s",
	      strerror(errno));
	close(d2b);
	close(d4);

	/* shutdown(SHUT_WR) through one copy: the server gets EOF, echoes what
	 * it had and closes; we still read through another copy. */
	write_n(d2, "tail", 4, IO_MS);
	int r = shutdown(d, SHUT_WR);
	CHECK("shutdown_wr", r == 0, "shutdown: %s", strerror(errno));
	char buf[8] = {0};
	ssize_t n = read_n(d3, buf, 4, IO_MS);
	CHECK("read_after_shutdown_wr", n == 4 && memcmp(buf, "tail", 4) == 0, "n=%zd", n);
	CHECK("peer_got_eof", wait_eof(d2, IO_MS) == 1, "server did not close after our SHUT_WR");
	n = send(d3, "x", 1, MSG_NOSIGNAL);
	int e = errno;
	CHECK("write_after_shutdown_epipe", n < 0 && e == EPIPE, "send: %zd %s", n, strerror(e));
	close(d);
	close(d2);
	close(d3);

	/* A dup made before connect() refers to the same socket: it is connected
	 * too and carries the data. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	int early = dup(s);
	r = connect(s, (const struct sockaddr *)target, sizeof *target);
	CHECK("dup_before_connect_connect", r == 0, "connect: %s", strerror(errno));
	if (r == 0) {
		struct hello h;
		r = read_hello(early, &h, err, sizeof err);
		CHECK("dup_before_connect_sees_connection",
		      r == 0 && names_equal(s, early, err, sizeof err) && hello_matches(early, &h, err, sizeof err) == 0,
		      "the earlier dup: %s", err);
		CHECK("dup_before_connect_data", echo_roundtrip(early, s, 1000, 1000, 7, err, sizeof err) == 0, "%s", err);
	}
	close(s);
	close(early);
	/* And the server still reports no failures. */
	int c = connect_hello(target, &last, err, sizeof err);
	CHECK("final", c >= 0, "%s", err);
	if (c >= 0)
		close(c);
	check_server_clean(&last);
}

int main(int argc, char **argv)
{
	static const struct prog p = {.name = "dupclose", .alarm_s = 10, .client = client};
	return prog_main(argc, argv, &p);
}
