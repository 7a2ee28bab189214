/* Children started through popen() and system(), which glibc spawns
 * internally (not through the exported posix_spawn or exec), working on
 * sockets they inherit. Not a semantics check of its own: a test runs it
 * under slim exec, with probe.c for the listener part.
 *
 *   spawn server ADDR PORT COUNT
 *       1. accepts one connection and hands it to a child started with
 *          popen("spawn child FD"); prints the child's report
 *       2. runs system("spawn acceptor LFD COUNT"): the child accepts COUNT
 *          connections on the inherited listener (HELLO, close) while this
 *          process waits in system() and accepts nothing
 *       3. serves (HELLO, close) until killed
 *   spawn client ADDR PORT
 *       connects, reads the popen child's "CHILD pid=P local=L peer=R" line
 *       (its getsockname and getpeername), checks them crosswise against
 *       its own, sends PING and expects PONG from the child */
#include "common.h"

static const char *g_self;

static int server(const char *ip, int port, int count)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0); /* no CLOEXEC: children inherit it */
	sin4 sa;
	setint(lfd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (lfd < 0 || mkaddr(&sa, ip, port) < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(lfd, 128) < 0) {
		fprintf(stderr, "spawn: listen %s:%d: %s\n", ip, port, strerror(errno));
		return 2;
	}
	printf("# spawn listening on %s:%d, pid %d\n", ip, port, (int)getpid());
	int c = accept(lfd, NULL, NULL);
	CHECK("accept", c >= 0, "%s", strerror(errno));
	char cmd[512], line[512] = "";
	snprintf(cmd, sizeof cmd, "exec %s child %d", g_self, c);
	FILE *f = popen(cmd, "r");
	CHECK("popen", f != NULL, "%s", strerror(errno));
	if (f != NULL) {
		if (fgets(line, sizeof line, f) == NULL)
			check_fail("popen_child", "the child said nothing");
		CHECK("pclose", pclose(f) == 0, "the child failed");
		printf("# popen child: %s", line);
	}
	close(c);
	printf("# system(acceptor)\n");
	snprintf(cmd, sizeof cmd, "exec %s acceptor %d %d", g_self, lfd, count);
	int st = system(cmd);
	CHECK("system", st == 0, "the acceptor child exited with status %d", st);
	printf("# system returned\n");
	for (;;) {
		int s = accept(lfd, NULL, NULL);
		if (s >= 0) {
			send_hello(s);
			close(s);
		}
	}
}

/* The popen child: tells the client what it sees of the inherited
 * connection, then answers PING with PONG. */
static int child(int fd)
{
	sin4 l, p;
	char line[256];
	if (get_local(fd, &l) < 0 || get_peer(fd, &p) < 0)
		return 1;
	snprintf(line, sizeof line, "CHILD pid=%d local=%s peer=%s\n", (int)getpid(), SA(&l), SA(&p));
	if (write_n(fd, line, strlen(line), IO_MS) < 0 || read_line(fd, line, sizeof line, IO_MS) < 0 ||
	    strcmp(line, "PING") != 0 || write_n(fd, "PONG\n", 5, IO_MS) < 0)
		return 1;
	printf("served local=%s peer=%s\n", SA(&l), SA(&p));
	return 0;
}

/* The system() child: COUNT connections on the inherited listener. */
static int acceptor(int lfd, int count)
{
	for (int n = 0; n < count;) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			continue;
		send_hello(c);
		close(c);
		n++;
	}
	printf("# acceptor pid %d served %d\n", (int)getpid(), count);
	return 0;
}

static int client(const sin4 *target)
{
	char line[256], lstr[64], pstr[64];
	int pid;
	sin4 l, p, cl, cp;
	int fd = connect_to(target);
	CHECK("connect", fd >= 0, "%s", strerror(errno));
	if (fd < 0)
		return finish();
	int got = read_line(fd, line, sizeof line, IO_MS) >= 0 &&
		  sscanf(line, "CHILD pid=%d local=%63s peer=%63s", &pid, lstr, pstr) == 3 &&
		  parse_ipport(lstr, &cl) == 0 && parse_ipport(pstr, &cp) == 0;
	CHECK("child_line", got, "no CHILD line from the popen child (%s)", strerror(errno));
	if (got && get_local(fd, &l) == 0 && get_peer(fd, &p) == 0) {
		printf("# child sees local=%s peer=%s; this client local=%s peer=%s\n", SA(&cl), SA(&cp),
		       SA(&l), SA(&p));
		CHECK("child_local_is_my_peer", sa_eq(&cl, &p), "child's local %s, my peer %s", SA(&cl),
		      SA(&p));
		CHECK("child_peer_is_my_local", sa_eq(&cp, &l), "child's peer %s, my local %s", SA(&cp),
		      SA(&l));
	}
	int pong = write_n(fd, "PING\n", 5, IO_MS) == 5 && read_line(fd, line, sizeof line, IO_MS) >= 0 &&
		   strcmp(line, "PONG") == 0;
	CHECK("child_data", pong, "no PONG from the child");
	close(fd);
	return finish();
}

/* A child of the server goes when the server goes, and within a minute. */
static void bounded_child(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);
	arm_alarm(60);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	g_self = argv[0];
	sin4 target;
	if (argc == 5 && strcmp(argv[1], "server") == 0)
		return server(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 3 && strcmp(argv[1], "child") == 0) {
		bounded_child();
		return child(atoi(argv[2]));
	}
	if (argc == 4 && strcmp(argv[1], "acceptor") == 0) {
		bounded_child();
		return acceptor(atoi(argv[2]), atoi(argv[3]));
	}
	if (argc == 4 && strcmp(argv[1], "client") == 0 && mkaddr(&target, argv[2], atoi(argv[3])) == 0) {
		arm_alarm(30);
		return client(&target);
	}
	fprintf(stderr,
		"usage: %s server ADDR PORT COUNT\n"
		"       %s client ADDR PORT\n",
		argv[0], argv[0]);
	return 2;
}
