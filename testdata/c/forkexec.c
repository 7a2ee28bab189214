/* fork and exec with sockets.
 * Server: a prefork server (two children accept on one listener). After
 * HELLO it reads a command line: "ECHO" echoes; "EXEC" hands the accepted
 * socket to a freshly exec'd image of this program (inetd style), which
 * checks getpeername/getsockname against what the child saw, answers
 * "EXECOK pid=P fails=F" and echoes.
 * Client: two held connections are served by two different children; a
 * connection inherited across fork works in the child and still in the
 * parent; a child connects on its own after fork; a connected socket
 * survives exec of this program (names equal, data flows).
 * Internal modes (exec'd by the program itself):
 *   PROG exec-serve FD PEER LOCAL     PROG exec-client FD LOCAL PEER */
#include "common.h"
#include <sys/mman.h>
#include <sys/prctl.h>

static const char *g_argv0 = "forkexec";

static void exec_self(const char *mode, int fd, const sin4 *a, const sin4 *b)
{
	char fds[16], as[64], bs[64];
	snprintf(fds, sizeof fds, "%d", fd);
	fmt_sa(a, as, sizeof as);
	fmt_sa(b, bs, sizeof bs);
	execl("/proc/self/exe", g_argv0, mode, fds, as, bs, (char *)NULL);
	printf("FAIL %s_exec: execl /proc/self/exe: %s\n", mode, strerror(errno));
	_exit(127);
}

/* The exec'd image: fd must still be the same connection. */
static int exec_image(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	arm_alarm(20);
	int serve_side = strcmp(argv[1], "exec-serve") == 0;
	sin4 want_peer, want_local, p, l;
	if (argc < 5 || parse_ipport(argv[serve_side ? 3 : 4], &want_peer) < 0 ||
	    parse_ipport(argv[serve_side ? 4 : 3], &want_local) < 0) {
		fprintf(stderr, "%s: bad arguments\n", argv[1]);
		return 2;
	}
	int fd = atoi(argv[2]);
	const char *tag = serve_side ? "exec_serve" : "exec_client";
	char name[64], err[256];
	int rp = get_peer(fd, &p), rl = get_local(fd, &l);
	snprintf(name, sizeof name, "%s_getpeername", tag);
	CHECK(name, rp == 0 && sa_eq(&p, &want_peer), "fd %d after exec: %s, before exec %s", fd,
	      rp ? strerror(errno) : SA(&p), SA(&want_peer));
	snprintf(name, sizeof name, "%s_getsockname", tag);
	CHECK(name, rl == 0 && sa_eq(&l, &want_local), "fd %d after exec: %s, before exec %s", fd,
	      rl ? strerror(errno) : SA(&l), SA(&want_local));
	print_addr(serve_side ? "server-exec" : "client-exec", fd, NULL);
	if (serve_side) {
		char line[96];
		snprintf(line, sizeof line, "EXECOK pid=%d fails=%d\n", (int)getpid(), atomic_load(&g_fails));
		write_n(fd, line, strlen(line), IO_MS);
		echo_loop(fd);
	} else {
		snprintf(name, sizeof name, "%s_echo", tag);
		CHECK(name, echo_roundtrip(fd, fd, 100000, 10000, 11, err, sizeof err) == 0, "%s", err);
	}
	return finish();
}

/* ---- server ----------------------------------------------------------- */

struct shm {
	atomic_long idx, done;
	atomic_int checks, fails; /* the children's, for the parent's summary */
};

static void child_loop(int lfd, struct shm *sh)
{
	int rep_checks = 0, rep_fails = 0;
	for (;;) {
		sin4 acc;
		socklen_t alen = sizeof acc;
		int c = accept(lfd, (struct sockaddr *)&acc, &alen);
		if (c < 0) {
			if (errno != EINTR && errno != ECONNABORTED) {
				check_fail("srv_accept", "accept: %s", strerror(errno));
				sleep_ms(100);
			}
			continue;
		}
		long idx = atomic_fetch_add(&sh->idx, 1);
		srv_check_accepted(c, &acc, alen == sizeof acc, idx);
		char cmd[32];
		if (send_hello(c) == 0 && read_line(c, cmd, sizeof cmd, IO_MS) >= 0) {
			if (strcmp(cmd, "EXEC") == 0) {
				sin4 p, l;
				get_peer(c, &p);
				get_local(c, &l);
				fflush(stdout);
				pid_t g = fork();
				if (g == 0)
					exec_self("exec-serve", c, &p, &l);
				CHECKQ(idx >= 4, "srv_fork_for_exec", g > 0, "fork: %s", strerror(errno));
			} else {
				echo_loop(c);
			}
		}
		close(c);
		int nc = atomic_load(&g_checks), nf = atomic_load(&g_fails);
		atomic_fetch_add(&sh->checks, nc - rep_checks);
		atomic_fetch_add(&sh->fails, nf - rep_fails);
		rep_checks = nc;
		rep_fails = nf;
		atomic_fetch_add(&sh->done, 1);
	}
}

static void prefork_server(int lfd, long maxconns)
{
	struct shm *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		check_fail("srv_mmap", "%s", strerror(errno));
		return;
	}
	fcntl(lfd, F_SETFD, FD_CLOEXEC); /* the exec'd handlers need only their connection */
	pid_t parent = getpid(), kids[2];
	for (int i = 0; i < 2; i++) {
		fflush(stdout);
		kids[i] = fork();
		if (kids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != parent)
				_exit(0);
			signal(SIGCHLD, SIG_IGN); /* exec'd handlers reap themselves */
			child_loop(lfd, sh);
			_exit(0);
		}
	}
	printf("# prefork children %d %d\n", (int)kids[0], (int)kids[1]);
	if (maxconns > 0) {
		while (atomic_load(&sh->done) < maxconns)
			sleep_ms(50);
	} else {
		int st;
		pid_t w = wait(&st);
		check_fail("srv_prefork_child", "child %d exited (status %#x)", (int)w, st);
	}
	for (int i = 0; i < 2; i++) {
		kill(kids[i], SIGTERM);
		waitpid(kids[i], NULL, 0);
	}
	atomic_fetch_add(&g_checks, atomic_load(&sh->checks));
	atomic_fetch_add(&g_fails, atomic_load(&sh->fails));
}

/* ---- client ----------------------------------------------------------- */

static int cmd_echo(int fd) { return write_n(fd, "ECHO\n", 5, IO_MS) == 5 ? 0 : -1; }

/* Runs fn in a forked child; returns its exit status (or -1). */
static int in_child(int (*fn)(void *), void *arg)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(10);
		_exit(fn(arg));
	}
	if (pid < 0)
		return -1;
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int child_echo(void *v)
{
	char err[256];
	if (echo_roundtrip(*(int *)v, *(int *)v, 50000, 5000, 21, err, sizeof err) < 0) {
		printf("# child echo on inherited socket: %s\n", err);
		return 1;
	}
	return 0;
}

static const sin4 *g_target;

static int child_connect(void *v)
{
	(void)v;
	char err[256];
	struct hello h;
	int fd = connect_hello(g_target, &h, err, sizeof err);
	if (fd < 0 || cmd_echo(fd) < 0 || echo_roundtrip(fd, fd, 5000, 5000, 22, err, sizeof err) < 0) {
		printf("# child's own connection: %s\n", err);
		return 1;
	}
	close(fd);
	return 0;
}

static struct hello last;

static void client(const sin4 *target, const sin4 *refused)
{
	(void)refused;
	char err[256];
	struct hello h1, h2;
	g_target = target;

	/* Two held connections: two different prefork children serve them. */
	int c1 = connect_hello(target, &h1, err, sizeof err);
	CHECK("prefork_conn1", c1 >= 0, "%s", err);
	int c2 = connect_hello(target, &h2, err, sizeof err);
	CHECK("prefork_conn2", c2 >= 0, "%s", err);
	if (c1 >= 0 && c2 >= 0) {
		print_addr("client", c1, NULL);
		CHECK("prefork_two_children_serve", h1.pid != h2.pid && h1.pid > 0, "both served by pid %d", h1.pid);
		cmd_echo(c1);
		cmd_echo(c2);
		CHECK("prefork_echo", echo_roundtrip(c1, c1, 20000, 5000, 1, err, sizeof err) == 0 &&
					      echo_roundtrip(c2, c2, 20000, 5000, 2, err, sizeof err) == 0,
		      "%s", err);
	}
	if (c1 >= 0)
		close(c1);
	if (c2 >= 0)
		close(c2);

	/* The server execs a handler with the accepted socket. */
	struct hello h3;
	int c3 = connect_hello(target, &h3, err, sizeof err);
	CHECK("exec_accepted_connect", c3 >= 0, "%s", err);
	if (c3 >= 0) {
		write_n(c3, "EXEC\n", 5, IO_MS);
		char line[96];
		int pid = 0, fails = -1;
		int r = read_line(c3, line, sizeof line, IO_MS) >= 0 &&
			sscanf(line, "EXECOK pid=%d fails=%d", &pid, &fails) == 2;
		CHECK("exec_accepted_socket_names", r && fails == 0 && pid != h3.pid,
		      "answer \"%s\" (want EXECOK from a new pid with fails=0)", r ? line : "none");
		CHECK("exec_accepted_socket_echo", echo_roundtrip(c3, c3, 100000, 10000, 3, err, sizeof err) == 0, "%s",
		      err);
		close(c3);
	}

	/* A connection inherited across fork: the child uses it, the parent
	 * keeps it after the child exits (its close is not a shutdown). */
	struct hello h4;
	int c4 = connect_hello(target, &h4, err, sizeof err);
	CHECK("fork_connect", c4 >= 0, "%s", err);
	if (c4 >= 0) {
		cmd_echo(c4);
		int st = in_child(child_echo, &c4);
		CHECK("fork_child_uses_inherited_conn", st == 0, "child exit status %d", st);
		CHECK("fork_parent_after_child_exit", echo_roundtrip(c4, c4, 50000, 5000, 4, err, sizeof err) == 0, "%s",
		      err);
		close(c4);
	}

	/* A child makes its own connection after fork. */
	int st = in_child(child_connect, NULL);
	CHECK("fork_child_connects", st == 0, "child exit status %d", st);

	/* A connected socket handed to a new image of this program by exec. */
	struct hello h5;
	int c5 = connect_hello(target, &h5, err, sizeof err);
	CHECK("exec_connect", c5 >= 0, "%s", err);
	if (c5 >= 0) {
		cmd_echo(c5);
		sin4 l, p;
		get_local(c5, &l);
		get_peer(c5, &p);
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			exec_self("exec-client", c5, &l, &p);
		int s = -1;
		if (pid > 0 && waitpid(pid, &s, 0) == pid)
			s = WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
		CHECK("exec_connected_socket", s == 0, "exec'd image exit status %d (see its lines above)", s);
		CHECK("exec_parent_still_works", echo_roundtrip(c5, c5, 5000, 5000, 5, err, sizeof err) == 0, "%s",
		      err);
		close(c5);
	}

	int f = connect_hello(target, &last, err, sizeof err);
	CHECK("final", f >= 0, "%s", err);
	if (f >= 0)
		close(f);
	check_server_clean(&last);
}

int main(int argc, char **argv)
{
	g_argv0 = argv[0];
	if (argc > 1 && (strcmp(argv[1], "exec-serve") == 0 || strcmp(argv[1], "exec-client") == 0))
		return exec_image(argc, argv);
	static const struct prog p = {.name = "forkexec",
				      .alarm_s = 20,
				      .client = client,
				      .server = prefork_server,
				      .selftest_fork_server = 1};
	return prog_main(argc, argv, &p);
}
