/*
 * Shim behaviour the programs of testdata/c do not cover: accelerated
 * sockets across exec and posix_spawn (the shim's SLIM_FDS), and clients
 * that bind before connect. Modes:
 *
 *   shimcheck listen ADDR PORT   listens on ADDR:PORT (inherited by exec)
 *                                and ADDR:PORT+1 (SOCK_CLOEXEC), prints
 *                                "listening on", execs itself ("serve"),
 *                                which accepts one connection and answers
 *                                "peer=IP:PORT kernel=IP:PORT" (getpeername
 *                                through libc and the raw syscall), then
 *                                closes the listener: "closed listener"
 *   shimcheck scrubbed ADDR PORT DIR
 *                                listens on 0.0.0.0:PORT, prints "listening
 *                                on ADDR:PORT", polls the listener until a client
 *                                comes, then forks a child that execs
 *                                "serve" with an empty environment (what
 *                                Postfix's and Dovecot's masters do to
 *                                their children) and waits for it; that
 *                                image chroots to DIR before it accepts
 *                                (as their smtpd and imap-login do)
 *   shimcheck spawn ADDR PORT    connects (a connect_block server), reads
 *                                its HELLO, hands the socket to a
 *                                posix_spawn'd image of itself ("child"),
 *                                which checks the names and echoes
 *   shimcheck chroot ADDR PORT DIR N
 *                                chroots to DIR, then connects N times to
 *                                a connect_block server and reads its
 *                                HELLO: "accelerated K of N" (K: the
 *                                connections whose kernel peer, past the
 *                                shim, is a host address)
 *   shimcheck bound ADDR PORT OWN
 *                                binds OWN:0, connects to a connect_block
 *                                server and checks getsockname: OWN and the
 *                                port the kernel (raw syscall) reports
 *
 * Every check prints "ok NAME" or "FAIL NAME: why"; exit status 0 if all
 * passed. No SLIM_FDS may be left in an exec'd image's environment.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static int fails;

static void check(const char *name, int ok, const char *why)
{
	if (ok) {
		printf("ok %s\n", name);
	} else {
		printf("FAIL %s: %s\n", name, why);
		fails++;
	}
	fflush(stdout);
}

static void fmt(const struct sockaddr_in *a, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
	snprintf(buf, len, "%s:%d", ip, ntohs(a->sin_port));
}

static int names(int fd, char *local, char *peer, size_t len)
{
	struct sockaddr_in l, p;
	socklen_t ll = sizeof l, pl = sizeof p;
	if (getsockname(fd, (struct sockaddr *)&l, &ll) != 0 ||
	    getpeername(fd, (struct sockaddr *)&p, &pl) != 0)
		return -1;
	fmt(&l, local, len);
	fmt(&p, peer, len);
	return 0;
}

/* TCP/IP sockets among this process's fds (/proc/self/fd): not the
 * shim's unix connection to the router. */
static int count_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		int domain = 0;
		socklen_t len = sizeof domain;
		if (de->d_name[0] != '.' &&
		    getsockopt(atoi(de->d_name), SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
		    (domain == AF_INET || domain == AF_INET6))
			n++;
	}
	if (d != NULL)
		closedir(d);
	return n;
}

static void env_is_clean(void)
{
	check("no_slim_fds_in_environment", getenv("SLIM_FDS") == NULL, getenv("SLIM_FDS") ?: "");
}

static int listener(const char *addr, int port, int flags)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, addr, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM | flags, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0) {
		perror("listen");
		exit(2);
	}
	return fd;
}

static int do_listen(const char *addr, int port, const char *self)
{
	int fd = listener(addr, port, 0);
	listener(addr, port + 1, SOCK_CLOEXEC);
	char fds[16];
	snprintf(fds, sizeof fds, "%d", fd);
	printf("listening on %s:%d\n", addr, port);
	fflush(stdout);
	execl(self, "shimcheck", "serve", fds, (char *)NULL);
	perror("execl");
	return 2;
}

static int do_scrubbed(const char *addr, int port, const char *dir, const char *self)
{
	int fd = listener("0.0.0.0", port, 0);
	char fds[16];
	snprintf(fds, sizeof fds, "%d", fd);
	printf("listening on %s:%d\n", addr, port);
	fflush(stdout);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 20000) != 1) {
		printf("FAIL scrubbed_poll: no client within 20 s\n");
		return 1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		char *empty[] = {NULL};
		alarm(15); /* kept across exec: an image stuck in accept ends */
		execle(self, "shimcheck", "serve", fds, dir, (char *)NULL, empty);
		perror("execle");
		_exit(2);
	}
	int st = -1;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* Accepts one client from lfd; chroots to dir first, if not NULL. */
static int serve(int lfd, const char *dir)
{
	env_is_clean();
	/* The listener and its host listener; not the CLOEXEC one's. */
	int n = count_sockets();
	char why[64];
	snprintf(why, sizeof why, "%d sockets after exec, want 2", n);
	check("only_inherited_listener_pair_survives", n == 2, why);
	if (dir != NULL)
		check("chroot", chroot(dir) == 0 && chdir("/") == 0, strerror(errno));
	struct sockaddr_in peer;
	socklen_t plen = sizeof peer;
	int c = accept(lfd, (struct sockaddr *)&peer, &plen);
	if (c < 0) {
		perror("accept");
		return 2;
	}
	char local[64], p[64], kernel[64];
	struct sockaddr_in k;
	socklen_t klen = sizeof k;
	names(c, local, p, sizeof p);
	syscall(SYS_getpeername, c, &k, &klen); /* past the shim */
	fmt(&k, kernel, sizeof kernel);
	char line[256];
	int len = snprintf(line, sizeof line, "peer=%s kernel=%s\n", p, kernel);
	printf("%s", line);
	fflush(stdout);
	if (write(c, line, (size_t)len) != len)
		return 2;
	close(c);
	close(lfd);
	printf("closed listener\n");
	fflush(stdout);
	return fails ? 1 : 0;
}

static ssize_t read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;
	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, 1);
		if (r <= 0)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

static int spawn(const char *addr, int port, const char *self)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, addr, &sa.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("connect");
		return 2;
	}
	char hello[256], local[64], peer[64], fds[16];
	check("hello", read_line(fd, hello, sizeof hello) > 0, "no HELLO");
	names(fd, local, peer, sizeof local);
	printf("addr local=%s peer=%s side=client\n", local, peer);
	snprintf(fds, sizeof fds, "%d", fd);
	char *argv[] = {"shimcheck", "child", fds, local, peer, NULL};
	pid_t pid;
	int r = posix_spawn(&pid, self, NULL, NULL, argv, environ);
	check("posix_spawn", r == 0, strerror(r));
	int st = -1;
	if (r == 0)
		waitpid(pid, &st, 0);
	check("spawned_child", r == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "child failed");
	return fails ? 1 : 0;
}

static int child(int fd, const char *want_local, const char *want_peer)
{
	env_is_clean();
	char local[64], peer[64], why[256], buf[64];
	int r = names(fd, local, peer, sizeof local);
	snprintf(why, sizeof why, "after posix_spawn %s %s, before %s %s", local, peer, want_local,
		 want_peer);
	check("spawn_names", r == 0 && !strcmp(local, want_local) && !strcmp(peer, want_peer), why);
	struct sockaddr_in k;
	socklen_t klen = sizeof k;
	char kernel[64];
	syscall(SYS_getpeername, fd, &k, &klen); /* past the shim */
	fmt(&k, kernel, sizeof kernel);
	printf("# child kernel=%s\n", kernel);
	check("spawn_echo",
	      write(fd, "ping\n", 5) == 5 && read_line(fd, buf, sizeof buf) == 5 &&
		      !strcmp(buf, "ping\n"),
	      "no echo");
	return fails ? 1 : 0;
}

static int in_chroot(const char *addr, int port, const char *dir, int n)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, addr, &sa.sin_addr);
	check("chroot", chroot(dir) == 0 && chdir("/") == 0, strerror(errno));
	int accelerated = 0;
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		char hello[256];
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
		    read_line(fd, hello, sizeof hello) <= 0) {
			check("connect_in_chroot", 0, strerror(errno));
			close(fd);
			break;
		}
		struct sockaddr_in k;
		socklen_t klen = sizeof k;
		syscall(SYS_getpeername, fd, &k, &klen); /* past the shim */
		if (k.sin_addr.s_addr != sa.sin_addr.s_addr)
			accelerated++;
		close(fd);
	}
	printf("accelerated %d of %d\n", accelerated, n);
	return fails ? 1 : 0;
}

static int bound(const char *addr, int port, const char *own)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = 0};
	inet_pton(AF_INET, addr, &sa.sin_addr);
	inet_pton(AF_INET, own, &me.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	check("bind_own_ip_port_0", bind(fd, (struct sockaddr *)&me, sizeof me) == 0, strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("connect");
		return 2;
	}
	char hello[256], local[64], peer[64], kernel[64], why[256];
	struct sockaddr_in l, k;
	socklen_t llen = sizeof l, klen = sizeof k;
	check("hello", read_line(fd, hello, sizeof hello) > 0, "no HELLO");
	getsockname(fd, (struct sockaddr *)&l, &llen);
	syscall(SYS_getsockname, fd, &k, &klen); /* past the shim */
	names(fd, local, peer, sizeof local);
	fmt(&k, kernel, sizeof kernel);
	printf("addr local=%s peer=%s side=client\n# kernel local=%s\n", local, peer, kernel);
	snprintf(why, sizeof why, "getsockname %s, bound to %s:0, kernel %s", local, own, kernel);
	check("bound_getsockname_own_ip", l.sin_addr.s_addr == me.sin_addr.s_addr, why);
	check("bound_getsockname_kernel_port", l.sin_port == k.sin_port && l.sin_port != 0, why);
	return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
	static char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0)
		return 2;
	self[n] = '\0';
	if (argc == 4 && !strcmp(argv[1], "listen"))
		return do_listen(argv[2], atoi(argv[3]), self);
	if ((argc == 3 || argc == 4) && !strcmp(argv[1], "serve"))
		return serve(atoi(argv[2]), argc == 4 ? argv[3] : NULL);
	if (argc == 5 && !strcmp(argv[1], "scrubbed"))
		return do_scrubbed(argv[2], atoi(argv[3]), argv[4], self);
	if (argc == 4 && !strcmp(argv[1], "spawn"))
		return spawn(argv[2], atoi(argv[3]), self);
	if (argc == 6 && !strcmp(argv[1], "chroot"))
		return in_chroot(argv[2], atoi(argv[3]), argv[4], atoi(argv[5]));
	if (argc == 5 && !strcmp(argv[1], "bound"))
		return bound(argv[2], atoi(argv[3]), argv[4]);
	if (argc == 5 && !strcmp(argv[1], "child"))
		return child(atoi(argv[2]), argv[3], argv[4]);
	fprintf(stderr, "usage: shimcheck listen|spawn ADDR PORT | scrubbed ADDR PORT DIR | chroot ADDR PORT DIR N | bound ADDR PORT OWN\n");
	return 2;
}
