/* Accepts and connects that the shim cannot see: io_uring (liburing, as
 * liburing-based servers, tokio-uring and glommio do) and a raw accept4
 * syscall. Not a semantics check: a test runs it under slim exec and
 * checks that no client is stranded (docs/datapath.md "Accepts the shim
 * does not see").
 *
 *   uring server ADDR PORT [raw]   listen() through libc, then accept with
 *                                  io_uring (raw: syscall(SYS_accept4)); each
 *                                  connection gets HELLO (common.h) and is
 *                                  closed
 *   uring client ADDR PORT COUNT   COUNT connections, each connect()ed with
 *                                  io_uring; prints probe.c's lines
 *
 * Every io_uring wait of the client is bounded (WAIT_MS). */
#include "common.h"
#include <liburing.h>
#include <sys/syscall.h>

#define WAIT_MS 3000

static int uring_accept(struct io_uring *ring, int lfd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (sqe == NULL) {
		errno = EBUSY;
		return -1;
	}
	io_uring_prep_accept(sqe, lfd, NULL, NULL, 0);
	int r = io_uring_submit(ring);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	struct io_uring_cqe *cqe;
	do
		r = io_uring_wait_cqe(ring, &cqe);
	while (r == -EINTR);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	int res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	if (res < 0) {
		errno = -res;
		return -1;
	}
	return res;
}

static int server(const char *ip, int port, int raw)
{
	int lfd = listen_ip(ip, port, 128);
	struct io_uring ring;
	if (lfd < 0 || io_uring_queue_init(8, &ring, 0) < 0) {
		fprintf(stderr, "uring: listen %s:%d or io_uring setup: %s\n", ip, port, strerror(errno));
		return 2;
	}
	printf("# uring listening on %s:%d, accepting with %s\n", ip, port,
	       raw ? "syscall(SYS_accept4)" : "io_uring");
	for (long n = 0;; n++) {
		int c = raw ? (int)syscall(SYS_accept4, lfd, NULL, NULL, 0) : uring_accept(&ring, lfd);
		if (c < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				check_fail("accept", "%s", strerror(errno));
			continue;
		}
		send_hello(c);
		close(c);
	}
}

/* connect() through io_uring, bounded by WAIT_MS: 0 or -1 with errno. */
static int uring_connect(struct io_uring *ring, int fd, const sin4 *sa)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	if (sqe == NULL) {
		errno = EBUSY;
		return -1;
	}
	io_uring_prep_connect(sqe, fd, (const struct sockaddr *)sa, sizeof *sa);
	int r = io_uring_submit(ring);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts = {WAIT_MS / 1000, (WAIT_MS % 1000) * 1000000L};
	do
		r = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	while (r == -EINTR);
	if (r < 0) {
		errno = r == -ETIME ? ETIMEDOUT : -r;
		return -1;
	}
	int res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	if (res < 0) {
		errno = -res;
		return -1;
	}
	return 0;
}

/* 1: a host socket (accelerated), 0: the app's own socket, -1: error. */
static int accelerated(int fd)
{
	sin4 shown, raw;
	socklen_t len = sizeof raw;
	if (get_local(fd, &shown) < 0 || syscall(SYS_getsockname, fd, &raw, &len) != 0)
		return -1;
	return !sa_eq(&shown, &raw);
}

static int client(const sin4 *target, int count)
{
	struct io_uring ring;
	if (io_uring_queue_init(8, &ring, 0) < 0) {
		fprintf(stderr, "uring: io_uring setup: %s\n", strerror(errno));
		return 2;
	}
	int ok = 0, host = 0;
	double max_ms = 0;
	for (int i = 0; i < count; i++) {
		char err[256] = "", line[256];
		struct hello h;
		double start = now_ms();
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || uring_connect(&ring, fd, target) < 0)
			snprintf(err, sizeof err, "io_uring connect: %s", strerror(errno));
		else if (read_line(fd, line, sizeof line, WAIT_MS) < 0 || parse_hello(line, &h) < 0)
			snprintf(err, sizeof err, "reading HELLO: %s", strerror(errno));
		else
			hello_matches(fd, &h, err, sizeof err);
		double ms = now_ms() - start;
		int acc = err[0] == 0 ? accelerated(fd) : -1;
		if (fd >= 0)
			close(fd);
		max_ms = ms > max_ms ? ms : max_ms;
		if (err[0] != 0 || acc < 0) {
			check_fail("conn", "conn %d: %s (ms=%.0f)", i, err[0] ? err : "getsockname", ms);
			continue;
		}
		check_ok_q(1, "conn");
		ok++;
		host += acc;
		printf("conn %d ms=%.1f path=%s pid=%d\n", i, ms, acc ? "host" : "overlay", h.pid);
		sleep_ms(20);
	}
	printf("# probe n=%d ok=%d host=%d overlay=%d max_ms=%.0f\n", count, ok, host, ok - host, max_ms);
	return finish();
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	sin4 target;
	if (argc < 4 || mkaddr(&target, argv[2], atoi(argv[3])) < 0)
		goto usage;
	if (strcmp(argv[1], "server") == 0 && (argc == 4 || (argc == 5 && strcmp(argv[4], "raw") == 0)))
		return server(argv[2], atoi(argv[3]), argc == 5);
	if (strcmp(argv[1], "client") == 0 && argc == 5) {
		int count = atoi(argv[4]);
		if (count < 1 || count > 10000)
			goto usage;
		arm_alarm((unsigned)(count * (WAIT_MS + 100) / 1000 + 30));
		return client(&target, count);
	}
usage:
	fprintf(stderr,
		"usage: %s server ADDR PORT [raw]\n"
		"       %s client ADDR PORT COUNT\n",
		argv[0], argv[0]);
	return 2;
}
