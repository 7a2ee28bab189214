/* Close-then-listen: a server that closes its listener and at once listens
 * again on the same port, as `iperf3 -s` does between two tests. Each cycle
 * binds and listens on PORT (SO_REUSEADDR, as servers do), accepts one
 * client, echoes until the client's EOF, closes the connection and the
 * listener, and starts the next cycle with no pause. A bind that fails at
 * once is a failed cycle (it is retried every 20 ms, up to 2 s, so that the
 * run goes on and shows how long the port stayed taken).
 *
 *   relisten server ADDR PORT CYCLES [PAUSEFILE]
 *       the listener on PORT; a control listener on PORT+1 for one client,
 *       who is told "ready N" after each listen. With PAUSEFILE, the first
 *       listener, once listening, prints "# paused" and waits until the
 *       file is gone (a test restarts the router meanwhile).
 *   relisten client ADDR PORT CYCLES
 *       per cycle: wait for "ready N", connect to PORT, read the HELLO
 *       line, echo ECHO_BYTES, close first
 */
#include "common.h"

#define ECHO_BYTES (256 << 10)
#define RETRY_MS 20
#define RETRY_FOR_MS 2000
#define CONTROL_WAIT_MS 30000
#define PAUSE_MAX_MS 60000

/* socket + SO_REUSEADDR + bind + listen; -1 with errno and *what. */
static int listen_once(const sin4 *sa, const char **what)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		*what = "socket";
		return -1;
	}
	setint(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	*what = "bind";
	if (bind(fd, (const struct sockaddr *)sa, sizeof *sa) == 0) {
		*what = "listen";
		if (listen(fd, 16) == 0)
			return fd;
	}
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}

/* One cycle's listener: at once (returns fd) or after retries (counted as a
 * failure, fd still returned so the run goes on), or -1. */
static int relisten(const sin4 *sa, int cycle)
{
	const char *what;
	int fd = listen_once(sa, &what);
	if (fd >= 0) {
		check_ok_q(1, "relisten");
		return fd;
	}
	int first = errno;
	const char *first_what = what;
	double t0 = now_ms();
	while (fd < 0 && now_ms() - t0 < RETRY_FOR_MS) {
		sleep_ms(RETRY_MS);
		fd = listen_once(sa, &what);
	}
	if (fd >= 0)
		check_fail("relisten", "cycle %d: %s %s: %s at once; free again after %.0f ms", cycle,
			   first_what, SA(sa), strerror(first), now_ms() - t0);
	else
		check_fail("relisten", "cycle %d: %s %s: %s, still after %d ms", cycle, what, SA(sa),
			   strerror(errno), RETRY_FOR_MS);
	return fd;
}

/* Accepts one connection within ms; -1 on timeout or error. */
static int accept_within(int lfd, int ms)
{
	if (wait_ev(lfd, POLLIN, ms) <= 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	return accept(lfd, NULL, NULL);
}

/* Serves the one client of a cycle: HELLO, then echo until its EOF. */
static void serve_one(int lfd, int cycle)
{
	int c = accept_within(lfd, IO_MS);
	if (c < 0) {
		check_fail("accept", "cycle %d: %s", cycle, strerror(errno));
		return;
	}
	char line[64];
	snprintf(line, sizeof line, "HELLO cycle=%d\n", cycle);
	if (write_n(c, line, strlen(line), IO_MS) == (ssize_t)strlen(line))
		echo_loop(c);
	close(c);
}

/* Waits (bounded) while pausefile exists. */
static void pause_while(const char *pausefile)
{
	if (pausefile == NULL || access(pausefile, F_OK) != 0)
		return;
	printf("# paused\n");
	double t0 = now_ms();
	while (access(pausefile, F_OK) == 0 && now_ms() - t0 < PAUSE_MAX_MS)
		sleep_ms(10);
}

static int server(const char *ip, int port, int cycles, const char *pausefile)
{
	int ctl = listen_ip(ip, port + 1, 4);
	if (ctl < 0) {
		fprintf(stderr, "relisten: control listener %s:%d: %s\n", ip, port + 1, strerror(errno));
		return 2;
	}
	printf("# relisten listening on %s:%d (control)\n", ip, port + 1);
	int cc = accept_within(ctl, CONTROL_WAIT_MS);
	if (cc < 0) {
		fprintf(stderr, "relisten: no control client: %s\n", strerror(errno));
		return 2;
	}
	sin4 sa;
	mkaddr(&sa, ip, port);
	for (int i = 0; i < cycles; i++) {
		int lfd = relisten(&sa, i);
		if (lfd < 0)
			break;
		if (i == 0)
			pause_while(pausefile);
		char line[32];
		snprintf(line, sizeof line, "ready %d\n", i);
		if (write_n(cc, line, strlen(line), IO_MS) < 0) {
			check_fail("control", "cycle %d: %s", i, strerror(errno));
			close(lfd);
			break;
		}
		serve_one(lfd, i);
		close(lfd);
	}
	int ok = atomic_load(&g_checks) - atomic_load(&g_fails);
	printf("# %d of %d cycles listened at once\n", ok, cycles);
	close(cc);
	close(ctl);
	return finish();
}

/* One cycle of the client: connect, HELLO of this cycle, echo, close. */
static void client_cycle(const sin4 *target, int cycle)
{
	int fd = connect_to(target);
	if (fd < 0) {
		check_fail("connect", "cycle %d: %s: %s", cycle, SA(target), strerror(errno));
		return;
	}
	char line[64], want[64], err[256];
	snprintf(want, sizeof want, "HELLO cycle=%d", cycle);
	if (read_line(fd, line, sizeof line, IO_MS) < 0)
		check_fail("hello", "cycle %d: %s", cycle, strerror(errno));
	else if (strcmp(line, want) != 0)
		check_fail("hello", "cycle %d: got \"%s\"", cycle, line);
	else if (echo_roundtrip(fd, fd, ECHO_BYTES, 16384, (unsigned)cycle, err, sizeof err) < 0)
		check_fail("echo", "cycle %d: %s", cycle, err);
	else
		check_ok_q(cycle > 0, "cycle");
	close(fd);
}

static int client(const char *ip, int port, int cycles)
{
	sin4 ctl_addr, target;
	mkaddr(&ctl_addr, ip, port + 1);
	mkaddr(&target, ip, port);
	int cc = connect_to(&ctl_addr);
	if (cc < 0) {
		fprintf(stderr, "relisten: control %s: %s\n", SA(&ctl_addr), strerror(errno));
		return 2;
	}
	for (int i = 0; i < cycles; i++) {
		char line[32], want[32];
		snprintf(want, sizeof want, "ready %d", i);
		if (read_line(cc, line, sizeof line, PAUSE_MAX_MS) < 0 || strcmp(line, want) != 0) {
			check_fail("control", "waiting for \"%s\": %s", want, strerror(errno));
			break;
		}
		client_cycle(&target, i);
	}
	close(cc);
	return finish();
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	sin4 tmp;
	int port = argc >= 5 ? atoi(argv[3]) : 0, cycles = argc >= 5 ? atoi(argv[4]) : 0;
	int is_server = argc >= 2 && strcmp(argv[1], "server") == 0;
	int is_client = argc >= 2 && strcmp(argv[1], "client") == 0;
	if (argc < 5 || argc > (is_server ? 6 : 5) || !(is_server || is_client) ||
	    mkaddr(&tmp, argv[2], 0) < 0 || port <= 0 || port >= 65535 || cycles <= 0) {
		fprintf(stderr, "usage: %s server ADDR PORT CYCLES [PAUSEFILE]\n"
				"       %s client ADDR PORT CYCLES\n", argv[0], argv[0]);
		return 2;
	}
	arm_alarm(180);
	if (is_server)
		return server(argv[2], port, cycles, argc == 6 ? argv[5] : NULL);
	return client(argv[2], port, cycles);
}
