/* A timing client for the "never strand a client" tests: connects COUNT
 * times, one connection every INTERVAL_MS, reads the server's HELLO line
 * and closes. Not a semantics check: it tells a test how long each client
 * waited and which path it took.
 *
 *   probe ADDR PORT COUNT INTERVAL_MS [nonblock]
 *
 * One line per connection:
 *   conn I ms=T path=host|overlay pid=P
 * or, when it failed or waited more than WAIT_MS for its HELLO,
 *   FAIL conn I: reason (ms=T)
 * and at the end
 *   # probe n=N ok=K host=H overlay=O max_ms=M
 * Path is host when the socket is a host socket (plain mode: the kernel's
 * own getsockname, a raw syscall the shim cannot see, names another address
 * than the one the application is shown), overlay otherwise. pid is the
 * serving process (from HELLO). nonblock connects with O_NONBLOCK and
 * waits for POLLOUT, as event-loop clients do. */
#include "common.h"
#include <sys/syscall.h>

#define WAIT_MS 3000 /* a client that waits this long is stranded */

/* 1: a host socket (accelerated), 0: the app's own socket, -1: error. */
static int accelerated(int fd)
{
	sin4 shown, raw;
	socklen_t len = sizeof raw;
	if (get_local(fd, &shown) < 0 || syscall(SYS_getsockname, fd, &raw, &len) != 0)
		return -1;
	return !sa_eq(&shown, &raw);
}

static int connect_nonblocking(const sin4 *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0)
		return fd;
	int e = errno;
	if (e == EINPROGRESS) {
		int ev = wait_ev(fd, POLLOUT, WAIT_MS);
		e = ev == 0 ? ETIMEDOUT : ev < 0 ? errno : so_error(fd);
		if (e == 0)
			return fd;
	}
	close(fd);
	errno = e;
	return -1;
}

static int read_hello_within(int fd, struct hello *h, char *err, size_t errn)
{
	char line[256];
	memset(h, 0, sizeof *h);
	if (read_line(fd, line, sizeof line, WAIT_MS) < 0) {
		snprintf(err, errn, "reading HELLO: %s", strerror(errno));
		return -1;
	}
	if (parse_hello(line, h) < 0) {
		snprintf(err, errn, "bad HELLO line \"%.100s\"", line);
		return -1;
	}
	return 0;
}

struct totals {
	int ok, host, overlay;
	double max_ms;
};

static void probe_once(const sin4 *target, int idx, int nonblock, struct totals *t)
{
	char err[256] = "";
	struct hello h;
	double start = now_ms();
	int fd = nonblock ? connect_nonblocking(target) : connect_to(target);
	if (fd < 0)
		snprintf(err, sizeof err, "connect: %s", strerror(errno));
	else if (read_hello_within(fd, &h, err, sizeof err) == 0)
		hello_matches(fd, &h, err, sizeof err);
	double ms = now_ms() - start;
	int acc = fd >= 0 && err[0] == 0 ? accelerated(fd) : -1;
	if (fd >= 0)
		close(fd);
	if (ms > t->max_ms)
		t->max_ms = ms;
	if (err[0] == 0 && acc < 0)
		snprintf(err, sizeof err, "getsockname: %s", strerror(errno));
	if (err[0] != 0) {
		check_fail("conn", "conn %d: %s (ms=%.0f)", idx, err, ms);
		return;
	}
	check_ok_q(1, "conn");
	t->ok++;
	*(acc ? &t->host : &t->overlay) += 1;
	printf("conn %d ms=%.1f path=%s pid=%d\n", idx, ms, acc ? "host" : "overlay", h.pid);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	sin4 target;
	int nonblock = argc == 6 && strcmp(argv[5], "nonblock") == 0;
	if ((argc != 5 && !nonblock) || mkaddr(&target, argv[1], atoi(argv[2])) < 0) {
		fprintf(stderr, "usage: %s ADDR PORT COUNT INTERVAL_MS [nonblock]\n", argv[0]);
		return 2;
	}
	int count = atoi(argv[3]), interval = atoi(argv[4]);
	if (count < 1 || count > 10000 || interval < 0 || interval > 10000) {
		fprintf(stderr, "probe: COUNT 1-10000, INTERVAL_MS 0-10000\n");
		return 2;
	}
	arm_alarm((unsigned)((count * (long)(interval + WAIT_MS + 1000)) / 1000 + 30));
	struct totals t = {0};
	for (int i = 0; i < count; i++) {
		probe_once(&target, i, nonblock, &t);
		sleep_ms(interval);
	}
	printf("# probe n=%d ok=%d host=%d overlay=%d max_ms=%.0f\n", count, t.ok, t.host, t.overlay,
	       t.max_ms);
	return finish();
}
