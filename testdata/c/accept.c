/* accept in all its forms. The client writes "ME ip:port" (its getsockname)
 * first; the server accepts connection i with flavour i%5
 *   0 accept(fd, NULL, NULL)        1 accept with a full sockaddr_in
 *   2 accept with addrlen 8 (truncated; addrlen must come back as 16)
 *   3 accept4(SOCK_NONBLOCK|SOCK_CLOEXEC)   4 accept4(0)
 * checks that accept's address, getpeername and the client's own claim agree,
 * then sends HELLO. Concurrent clients must each get their own peer. */
#include "common.h"

static const char *flavour_name[] = {"null", "addr", "trunc", "accept4_flags", "accept4_noflags"};

static int flavoured_accept(int lfd, sin4 *acc, int *known, long idx)
{
	int fl = (int)(idx % 5), quiet = idx >= 10, fd;
	char name[64];
	snprintf(name, sizeof name, "srv_accept_%s", flavour_name[fl]);
	*known = 0;
	if (fl == 0) {
		fd = accept(lfd, NULL, NULL);
		CHECKQ(quiet, name, fd >= 0, "accept(NULL, NULL): %s", strerror(errno));
		return fd;
	}
	if (fl == 2) {
		unsigned char buf[32];
		memset(buf, 0xEE, sizeof buf);
		socklen_t len = 8;
		fd = accept(lfd, (struct sockaddr *)buf, &len);
		if (fd < 0) {
			check_fail(name, "accept: %s", strerror(errno));
			return fd;
		}
		int untouched = 1;
		for (size_t i = 8; i < sizeof buf; i++)
			untouched &= buf[i] == 0xEE;
		sin4 p;
		int pr = get_peer(fd, &p);
		CHECKQ(quiet, name, len == 16 && untouched && pr == 0 && memcmp(buf, &p, 8) == 0,
		       "addrlen=%u (want 16), bytes past 8 %s, first 8 bytes %s getpeername", (unsigned)len,
		       untouched ? "untouched" : "WRITTEN", pr == 0 && memcmp(buf, &p, 8) == 0 ? "match" : "differ from");
		memcpy(acc, buf, 8); /* family, port, address: the whole useful part */
		*known = 1;
		return fd;
	}
	socklen_t len = sizeof *acc;
	memset(acc, 0, sizeof *acc);
	if (fl == 1)
		fd = accept(lfd, (struct sockaddr *)acc, &len);
	else
		fd = accept4(lfd, (struct sockaddr *)acc, &len, fl == 3 ? SOCK_NONBLOCK | SOCK_CLOEXEC : 0);
	if (fd < 0) {
		check_fail(name, "accept: %s", strerror(errno));
		return fd;
	}
	*known = 1;
	int nb = is_nonblock(fd), ce = is_cloexec(fd);
	int want = fl == 3;
	CHECKQ(quiet, name, len == 16 && acc->sin_family == AF_INET && nb == want && ce == want,
	       "addrlen=%u family=%d O_NONBLOCK=%d FD_CLOEXEC=%d (want %d)", (unsigned)len, acc->sin_family, nb, ce,
	       want);
	return fd;
}

/* After accept: the client's claim must equal getpeername (and accept's addr). */
static void read_claim(int fd, long idx)
{
	char line[128];
	sin4 me, p;
	int quiet = idx >= 10;
	if (read_line(fd, line, sizeof line, IO_MS) < 0 || strncmp(line, "ME ", 3) != 0 ||
	    parse_ipport(line + 3, &me) < 0) {
		check_fail("srv_client_claim", "no ME line from client: %s", strerror(errno));
		return;
	}
	int r = get_peer(fd, &p);
	CHECKQ(quiet, "srv_peer_is_client", r == 0 && sa_eq(&p, &me), "getpeername %s but the client is %s",
	       r ? "error" : SA(&p), SA(&me));
}

static const struct srv_hooks hooks = {.accept_fn = flavoured_accept, .conn_fn = read_claim};

/* Client side of one connection: connect, claim, HELLO, cross-check, echo. */
static int one(const sin4 *target, struct hello *h, char *err, size_t errn, int print)
{
	int fd = connect_to(target);
	if (fd < 0) {
		snprintf(err, errn, "connect: %s", strerror(errno));
		return -1;
	}
	sin4 l;
	get_local(fd, &l);
	if (print)
		print_addr("client", fd, NULL);
	char line[96];
	snprintf(line, sizeof line, "ME %s\n", SA(&l));
	int rc = -1;
	if (write_n(fd, line, strlen(line), IO_MS) < 0)
		snprintf(err, errn, "write: %s", strerror(errno));
	else if (read_hello(fd, h, err, errn) == 0 && hello_matches(fd, h, err, errn) == 0 &&
		 echo_roundtrip(fd, fd, 64, 64, 5, err, errn) == 0)
		rc = 0;
	close(fd);
	return rc;
}

#define NCONC 16
static pthread_barrier_t bar;
static const sin4 *g_target;
static atomic_int conc_ok, conc_fail;
static char conc_err[256];

static void *conc_thread(void *v)
{
	(void)v;
	char err[256];
	struct hello h;
	pthread_barrier_wait(&bar);
	if (one(g_target, &h, err, sizeof err, 0) == 0) {
		atomic_fetch_add(&conc_ok, 1);
	} else {
		atomic_fetch_add(&conc_fail, 1);
		snprintf(conc_err, sizeof conc_err, "%s", err);
	}
	return NULL;
}

static struct hello last;

static void client(const sin4 *target, const sin4 *refused)
{
	(void)refused;
	char err[256], name[64];
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof name, "seq_%d", i);
		CHECK(name, one(target, &last, err, sizeof err, i == 0) == 0, "%s", err);
	}
	for (int round = 0; round < 3; round++) {
		pthread_t t[NCONC];
		g_target = target;
		atomic_store(&conc_ok, 0);
		atomic_store(&conc_fail, 0);
		pthread_barrier_init(&bar, NULL, NCONC);
		for (int i = 0; i < NCONC; i++)
			pthread_create(&t[i], NULL, conc_thread, NULL);
		for (int i = 0; i < NCONC; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&bar);
		snprintf(name, sizeof name, "concurrent_own_peer_%d", round);
		CHECK(name, atomic_load(&conc_ok) == NCONC, "%d of %d clients ok; e.g. %s", atomic_load(&conc_ok),
		      NCONC, conc_err);
	}
	CHECK("final", one(target, &last, err, sizeof err, 0) == 0, "%s", err);
	check_server_clean(&last);
}

/*
 * A blocking listener made non-blocking where this process's own fcntl
 * does not see it (a child it was shared with by fork, a process it was
 * passed to over SCM_RIGHTS), or by ioctl(FIONBIO) after an accept had to
 * wait: accept on the empty listener must say EAGAIN, not block. Each
 * runs in a child process of its own, bounded by alarm (a blocked accept
 * is a failure, not a hang).
 */
enum lshared { LS_FORK, LS_PASSED, LS_FIONBIO_AFTER_WAIT };

static void *connect_later(void *arg)
{
	sleep_ms(100);
	int c = connect_to((const sin4 *)arg);
	sleep_ms(300);
	if (c >= 0)
		close(c);
	return NULL;
}

static int listener_test(const char *ip, enum lshared how)
{
	int sp[2] = {-1, -1};
	pid_t helper = -1;
	if (how == LS_PASSED) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
			return 10;
		helper = fork(); /* before the listener exists */
		if (helper == 0) {
			int got = recv_fd(sp[1]);
			if (got < 0 || set_nonblock(got, 1) < 0 || write(sp[1], "k", 1) != 1)
				_exit(1);
			_exit(0);
		}
	}
	sin4 sa;
	mkaddr(&sa, ip, 0);
	int lfd = listen_on(&sa, 16, 0, NULL);
	if (lfd < 0)
		return 11;
	if (how == LS_FIONBIO_AFTER_WAIT) {
		/* A blocking accept that has to wait for its client. */
		sin4 la;
		get_local(lfd, &la);
		pthread_t t;
		pthread_create(&t, NULL, connect_later, &la);
		int a = accept(lfd, NULL, NULL);
		pthread_join(t, NULL);
		if (a < 0)
			return 12;
		close(a);
		int one = 1;
		if (ioctl(lfd, FIONBIO, &one) < 0)
			return 13;
	} else if (how == LS_FORK) {
		pid_t c = fork();
		if (c == 0)
			_exit(set_nonblock(lfd, 1) < 0 ? 1 : 0);
		int st;
		if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 14;
	} else {
		char k;
		if (send_fd(sp[0], lfd) < 0 || read_n(sp[0], &k, 1, IO_MS) != 1)
			return 15;
		int st;
		if (waitpid(helper, &st, 0) != helper || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 16;
	}
	if (!is_nonblock(lfd))
		return 17;
	int a = accept(lfd, NULL, NULL);
	if (a >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
		return 18;
	return 0;
}

static void listener_made_nonblock(const char *ip, const char *name, enum lshared how)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGALRM, SIG_DFL);
		alarm(5);
		_exit(listener_test(ip, how));
	}
	int st = 0;
	int r = pid < 0 ? -1 : waitpid(pid, &st, 0);
	CHECK(name, r == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "%s (exit %d, signal %d; 18: accept did not say EAGAIN)",
	      r != pid ? strerror(errno) : "child failed", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
	      WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static void local(const char *ip)
{
	sin4 sa;
	mkaddr(&sa, ip, 0);
	int lfd = listen_on(&sa, 16, 0, NULL);
	set_nonblock(lfd, 1);
	int a = accept(lfd, NULL, NULL);
	int e = errno;
	CHECK("nonblock_listener_empty_eagain", a < 0 && (e == EAGAIN || e == EWOULDBLOCK), "accept: %d %s", a,
	      strerror(e));
	a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	e = errno;
	CHECK("nonblock_listener_empty_eagain_accept4", a < 0 && (e == EAGAIN || e == EWOULDBLOCK), "accept4: %d %s",
	      a, strerror(e));
	sin4 la;
	get_local(lfd, &la);
	int c = connect_to(&la);
	int ev = wait_ev(lfd, POLLIN, IO_MS);
	CHECK("nonblock_listener_pollin", ev == POLLIN, "revents=%#x", ev);
	sin4 acc, cl;
	socklen_t alen = sizeof acc;
	a = accept(lfd, (struct sockaddr *)&acc, &alen);
	get_local(c, &cl);
	CHECK("nonblock_listener_accept", a >= 0 && sa_eq(&acc, &cl), "accept: %s addr=%s client=%s",
	      a < 0 ? strerror(errno) : "ok", SA(&acc), SA(&cl));
	CHECK("accepted_does_not_inherit_nonblock", a >= 0 && !is_nonblock(a),
	      "accepted socket is O_NONBLOCK though only the listener was");
	if (a >= 0)
		close(a);
	close(c);
	close(lfd);
	/* accept on a socket that is bound but not listening. */
	int b = reserve_port(ip, 0);
	a = accept(b, NULL, NULL);
	e = errno;
	CHECK("accept_not_listening_einval", a < 0 && e == EINVAL, "accept: %d %s", a, strerror(e));
	close(b);
	listener_made_nonblock(ip, "listener_forked_child_sets_nonblock_eagain", LS_FORK);
	listener_made_nonblock(ip, "listener_passed_receiver_sets_nonblock_eagain", LS_PASSED);
	listener_made_nonblock(ip, "listener_fionbio_after_waiting_accept_eagain", LS_FIONBIO_AFTER_WAIT);
}

int main(int argc, char **argv)
{
	static const struct prog p = {.name = "accept", .alarm_s = 15, .client = client, .local = local, .hooks = &hooks};
	return prog_main(argc, argv, &p);
}
