/* Accepted connections passed to other processes (SCM_RIGHTS), as Node's
 * cluster module does (its primary accepts, round-robin, and sends each
 * connection to a worker over IPC).
 * Server: the process that accepts passes every connection, with the
 * names it sees, to one of two receiver processes in turn (forked before
 * any connection exists, so they learn of it only from the message). A
 * receiver checks that getpeername/getsockname of the socket it received
 * are what the acceptor saw, then serves it (HELLO with its own pid and
 * names, echo). With SLIMTEST_PASS_SOCK=PATH the server passes them to
 * an external receiver at PATH instead (another program, possibly built
 * another way):
 *   PROG receiver PATH    listens on unix socket PATH (SOCK_SEQPACKET),
 *                         takes one sender and serves what it passes
 * Client: connections, each served by a receiver (as many distinct ones
 * as SLIMTEST_PASS_RECEIVERS says, 2 by default: an external receiver is
 * one), names crosswise equal (HELLO), data echoed. */
#include "common.h"
#include <sys/un.h>

#define RECEIVERS 2
#define PASS_TEXT 160

static int unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun->sun_path)
		return -1;
	strcpy(sun->sun_path, path);
	return 0;
}

/* Sends fd with text (the names the sender sees) in one message. */
static int pass_fd(int sock, int fd, const char *text)
{
	return send_fd_with(sock, fd, text, strlen(text) + 1, MSG_NOSIGNAL);
}

/* Receives one passed fd and its text; -1 at the end of the sender. */
static int receive_fd(int sock, char *text, size_t n)
{
	struct iovec iov = {text, n - 1};
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			     .msg_controllen = sizeof cm.buf};
	ssize_t r;
	do
		r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1;
	text[r] = '\0';
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (c == NULL || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
		check_fail("passed_fd", "a message without a descriptor: \"%.60s\"", text);
		return -2;
	}
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

static void *serve_passed(void *v)
{
	int fd = (int)(intptr_t)v;
	if (send_hello(fd) == 0)
		echo_loop(fd);
	close(fd);
	return NULL;
}

/* A receiver: each passed connection must show the names its acceptor saw. */
static void receive_loop(int sock)
{
	char text[PASS_TEXT], ps[64], ls[64];
	long n = 0;
	for (;;) {
		int fd = receive_fd(sock, text, sizeof text);
		if (fd == -1)
			return;
		if (fd < 0)
			continue;
		sin4 want_p, want_l, p, l;
		if (sscanf(text, "PEER=%63s LOCAL=%63s", ps, ls) != 2 || parse_ipport(ps, &want_p) < 0 ||
		    parse_ipport(ls, &want_l) < 0) {
			check_fail("passed_text", "bad message \"%.60s\"", text);
			close(fd);
			continue;
		}
		int quiet = n >= 4;
		int rp = get_peer(fd, &p), rl = get_local(fd, &l);
		CHECKQ(quiet, "passed_getpeername", rp == 0 && sa_eq(&p, &want_p), "received fd: %s, the acceptor saw %s",
		       rp ? strerror(errno) : SA(&p), SA(&want_p));
		CHECKQ(quiet, "passed_getsockname", rl == 0 && sa_eq(&l, &want_l), "received fd: %s, the acceptor saw %s",
		       rl ? strerror(errno) : SA(&l), SA(&want_l));
		if (n++ < 8)
			print_addr("server-passed", fd, NULL);
		if (spawn_detached(serve_passed, (void *)(intptr_t)fd) != 0) {
			check_fail("passed_thread", "pthread_create failed");
			close(fd);
		}
	}
}

/* The unix socket to an external receiver at path, or -1. */
static int connect_receiver(const char *path)
{
	struct sockaddr_un sun;
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0 || unix_addr(path, &sun) < 0 || connect(s, (struct sockaddr *)&sun, sizeof sun) < 0) {
		fprintf(stderr, "passconn: connect %s: %s\n", path, strerror(errno));
		if (s >= 0)
			close(s);
		return -1;
	}
	return s;
}

/* Forks the receivers; socks[i] is the unix socket to receiver i. */
static int fork_receivers(int socks[RECEIVERS], pid_t pids[RECEIVERS])
{
	for (int i = 0; i < RECEIVERS; i++) {
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
			return -1;
		fflush(stdout);
		pids[i] = fork();
		if (pids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			close(sp[0]);
			for (int j = 0; j < i; j++)
				close(socks[j]);
			receive_loop(sp[1]);
			_exit(finish());
		}
		close(sp[1]);
		socks[i] = sp[0];
	}
	printf("# receivers %d %d\n", (int)pids[0], (int)pids[1]);
	return 0;
}

static void pass_server(int lfd, long maxconns)
{
	int socks[RECEIVERS] = {-1, -1};
	pid_t pids[RECEIVERS] = {-1, -1};
	int nsocks = RECEIVERS;
	const char *path = getenv("SLIMTEST_PASS_SOCK");
	if (path != NULL) {
		nsocks = 1;
		socks[0] = connect_receiver(path);
		if (socks[0] < 0)
			return;
	} else if (fork_receivers(socks, pids) < 0) {
		check_fail("srv_receivers", "%s", strerror(errno));
		return;
	}
	printf("# acceptor pid %d\n", (int)getpid());
	for (long idx = 0; maxconns <= 0 || idx < maxconns; idx++) {
		sin4 acc, p, l;
		int known;
		int c = default_accept(lfd, &acc, &known, idx);
		if (c < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				check_fail("srv_accept", "accept: %s", strerror(errno));
			idx--;
			continue;
		}
		srv_check_accepted(c, &acc, known, idx);
		char text[PASS_TEXT];
		int rp = get_peer(c, &p), rl = get_local(c, &l);
		snprintf(text, sizeof text, "PEER=%s LOCAL=%s", rp ? "0.0.0.0:0" : SA(&p), rl ? "0.0.0.0:0" : SA(&l));
		CHECKQ(idx >= 4, "srv_pass", pass_fd(socks[idx % nsocks], c, text) == 0, "sendmsg: %s", strerror(errno));
		close(c);
	}
	for (int i = 0; i < RECEIVERS; i++)
		if (pids[i] > 0) {
			kill(pids[i], SIGTERM);
			waitpid(pids[i], NULL, 0);
		}
}

/* PROG receiver PATH: serves what one sender at PATH passes, until it goes. */
static int external_receiver(const char *path)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_un sun;
	int u = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	unlink(path);
	if (u < 0 || unix_addr(path, &sun) < 0 || bind(u, (struct sockaddr *)&sun, sizeof sun) < 0 ||
	    listen(u, 1) < 0) {
		fprintf(stderr, "passconn: receiver on %s: %s\n", path, strerror(errno));
		return 2;
	}
	printf("# passconn receiver listening on %s, pid %d\n", path, (int)getpid());
	int s = accept(u, NULL, NULL);
	if (s < 0) {
		fprintf(stderr, "passconn: accept on %s: %s\n", path, strerror(errno));
		return 2;
	}
	receive_loop(s);
	return finish();
}

/* ---- client ----------------------------------------------------------- */

#define CONNS 6

static void client(const sin4 *target, const sin4 *refused)
{
	(void)refused;
	char err[256];
	struct hello h = {0};
	int pids[CONNS] = {0}, distinct = 0;
	for (int i = 0; i < CONNS; i++) {
		int fd = connect_hello(target, &h, err, sizeof err);
		CHECKQ(i > 0, "passed_conn_names", fd >= 0, "connection %d: %s", i, err);
		if (fd < 0)
			continue;
		if (i == 0)
			print_addr("client", fd, NULL);
		CHECKQ(i > 0, "passed_conn_echo", echo_roundtrip(fd, fd, 20000, 5000, (unsigned)i, err, sizeof err) == 0,
		       "connection %d: %s", i, err);
		CHECKQ(i > 0, "passed_conn_receiver_clean", h.fails == 0, "connection %d: its receiver reported %d failed checks",
		       i, h.fails);
		pids[i] = h.pid;
		int seen = 0;
		for (int j = 0; j < i; j++)
			seen |= pids[j] == h.pid;
		distinct += !seen;
		close(fd);
	}
	const char *want = getenv("SLIMTEST_PASS_RECEIVERS");
	int receivers = want != NULL ? atoi(want) : RECEIVERS;
	CHECK("passed_conns_receivers", distinct == receivers, "%d receivers served the %d connections, want %d",
	      distinct, CONNS, receivers);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "receiver") == 0)
		return external_receiver(argv[2]);
	static const struct prog p = {.name = "passconn",
				      .alarm_s = 20,
				      .client = client,
				      .server = pass_server,
				      .selftest_fork_server = 1};
	return prog_main(argc, argv, &p);
}
