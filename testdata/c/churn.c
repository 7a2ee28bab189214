/* Connection churn: THREADS threads connect in a loop (connect, read the
 * HELLO line, close, 10 ms pause) and count which connections were
 * accelerated, while a test stalls or restarts the client's router. Not a
 * semantics check: it tells a test when a client is accelerated again.
 *
 *   churn server ADDR PORT                      HELLO and echo (common.h)
 *   churn client ADDR PORT THREADS SECONDS [PAUSEFILE]
 *
 * The client prints, every 100 ms,
 *   tick ms=T acc=A ovl=O err=E
 * with running totals: A connections were accelerated, O went over the
 * overlay, E failed. Accelerated means, in plain mode, that the socket is a
 * host socket: the kernel's own getsockname (a raw syscall, which the shim
 * cannot see) names another address than the one the application is shown.
 * While PAUSEFILE exists the threads connect nothing. */
#include "common.h"
#include <sys/syscall.h>

#define MAX_THREADS 64
#define PAUSE_MS 10
#define TICK_MS 100

static sin4 g_target;
static const char *g_pausefile;
static atomic_long g_acc, g_ovl, g_err;
static atomic_int g_stop;

/* 1: a host socket (accelerated), 0: the app's own socket, -1: error. */
static int accelerated(int fd)
{
	sin4 shown, raw;
	socklen_t len = sizeof raw;
	if (get_local(fd, &shown) < 0 || syscall(SYS_getsockname, fd, &raw, &len) != 0)
		return -1;
	return !sa_eq(&shown, &raw);
}

static void connect_once(void)
{
	char line[256];
	int fd = connect_to(&g_target);
	int acc = fd < 0 || read_line(fd, line, sizeof line, IO_MS) < 0 ? -1 : accelerated(fd);
	if (fd >= 0)
		close(fd);
	atomic_fetch_add(acc > 0 ? &g_acc : acc == 0 ? &g_ovl : &g_err, 1);
}

static void *worker(void *arg)
{
	(void)arg;
	while (!atomic_load(&g_stop)) {
		if (g_pausefile == NULL || access(g_pausefile, F_OK) != 0)
			connect_once();
		sleep_ms(PAUSE_MS);
	}
	return NULL;
}

static int client(int threads, int seconds)
{
	pthread_t t[MAX_THREADS];
	int n = 0;
	while (n < threads && pthread_create(&t[n], NULL, worker, NULL) == 0)
		n++;
	double start = now_ms();
	while (now_ms() - start < seconds * 1000.0) {
		sleep_ms(TICK_MS);
		printf("tick ms=%.0f acc=%ld ovl=%ld err=%ld\n", now_ms() - start, atomic_load(&g_acc),
		       atomic_load(&g_ovl), atomic_load(&g_err));
	}
	atomic_store(&g_stop, 1);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	CHECK("threads", n == threads, "only %d of %d threads started", n, threads);
	CHECK("connected", atomic_load(&g_acc) + atomic_load(&g_ovl) > 0, "no connection succeeded");
	return finish();
}

static int churn_usage(const char *name)
{
	fprintf(stderr,
		"usage: %s server ADDR PORT\n"
		"       %s client ADDR PORT THREADS SECONDS [PAUSEFILE]\n",
		name, name);
	return 2;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 4 || mkaddr(&g_target, argv[2], atoi(argv[3])) < 0)
		return churn_usage(argv[0]);
	if (strcmp(argv[1], "server") == 0 && argc == 4) {
		int lfd = listen_ip(argv[2], atoi(argv[3]), 128);
		if (lfd < 0) {
			fprintf(stderr, "churn: listen %s:%s: %s\n", argv[2], argv[3], strerror(errno));
			return 2;
		}
		printf("# churn listening on %s:%s\n", argv[2], argv[3]);
		serve(lfd, 0, NULL);
		return finish();
	}
	if (strcmp(argv[1], "client") != 0 || argc < 6 || argc > 7)
		return churn_usage(argv[0]);
	int threads = atoi(argv[4]), seconds = atoi(argv[5]);
	if (threads < 1 || threads > MAX_THREADS || seconds < 1 || seconds > 600)
		return churn_usage(argv[0]);
	g_pausefile = argc == 7 ? argv[6] : NULL;
	arm_alarm((unsigned)seconds + 30);
	return client(threads, seconds);
}
