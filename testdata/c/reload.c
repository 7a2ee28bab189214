/* A seamless reload, as HAProxy does it: the old process hands its
 * listening socket to the new one over a unix socket (SCM_RIGHTS) and
 * stops accepting, but lives on a while (finishing its connections);
 * clients keep connecting all along. Not a semantics check: a test runs
 * it under slim exec with probe.c as the client.
 *
 *   reload old ADDR PORT SOCKPATH LINGER_MS
 *       listens on ADDR:PORT and serves (HELLO, then close; common.h) with
 *       a poll loop over the listener and a unix listener at SOCKPATH; the
 *       first process to connect there gets the listening socket; from
 *       then on this one accepts nothing, and exits LINGER_MS later
 *   reload new SOCKPATH
 *       receives the listening socket from SOCKPATH and serves it (blocking
 *       accept) until killed */
#include "common.h"
#include <sys/un.h>

static int unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun->sun_path)
		return -1;
	strcpy(sun->sun_path, path);
	return 0;
}

static void serve_one(int lfd)
{
	int c = accept(lfd, NULL, NULL);
	if (c < 0) {
		if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
			check_fail("accept", "%s", strerror(errno));
		return;
	}
	send_hello(c);
	close(c);
}

static int old_generation(const char *ip, int port, const char *path, int linger_ms)
{
	struct sockaddr_un sun;
	int lfd = listen_ip(ip, port, 128);
	int ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(path);
	if (lfd < 0 || ufd < 0 || unix_addr(path, &sun) < 0 ||
	    bind(ufd, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(ufd, 4) < 0) {
		fprintf(stderr, "reload: listen %s:%d / %s: %s\n", ip, port, path, strerror(errno));
		return 2;
	}
	printf("# reload listening on %s:%d, pid %d\n", ip, port, (int)getpid());
	for (;;) {
		struct pollfd p[2] = {{lfd, POLLIN, 0}, {ufd, POLLIN, 0}};
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents & POLLIN)
			serve_one(lfd);
		if (!(p[1].revents & POLLIN))
			continue;
		int u = accept(ufd, NULL, NULL);
		if (u < 0)
			continue;
		CHECK("handover", send_fd(u, lfd) == 0, "sendmsg: %s", strerror(errno));
		close(u);
		break;
	}
	printf("# old generation handed its listener over and accepts nothing more\n");
	sleep_ms(linger_ms);
	printf("# old generation exits\n");
	return finish();
}

static int new_generation(const char *path)
{
	struct sockaddr_un sun;
	int u = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (u < 0 || unix_addr(path, &sun) < 0 || connect(u, (struct sockaddr *)&sun, sizeof sun) < 0) {
		fprintf(stderr, "reload: connect %s: %s\n", path, strerror(errno));
		return 2;
	}
	int lfd = recv_fd(u);
	if (lfd < 0) {
		fprintf(stderr, "reload: no listener from %s: %s\n", path, strerror(errno));
		return 2;
	}
	close(u);
	printf("# new generation got the listener (fd %d), pid %d\n", lfd, (int)getpid());
	for (;;)
		serve_one(lfd);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc == 6 && strcmp(argv[1], "old") == 0)
		return old_generation(argv[2], atoi(argv[3]), argv[4], atoi(argv[5]));
	if (argc == 3 && strcmp(argv[1], "new") == 0)
		return new_generation(argv[2]);
	fprintf(stderr,
		"usage: %s old ADDR PORT SOCKPATH LINGER_MS\n"
		"       %s new SOCKPATH\n",
		argv[0], argv[0]);
	return 2;
}
