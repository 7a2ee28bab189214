/* connectmany: connects to ADDR:PORT N times, one connection after the
 * other, closing each as soon as it is up (a short-lived client's pattern,
 * in one process). A worker thread connects; when it is done, the main
 * thread exits with exit(), as most programs do.
 *
 *   connectmany ADDR PORT N [PAUSE_MS [CHILDREN]]
 *
 * PAUSE_MS (default 0) is slept between connects. With CHILDREN, the
 * process then forks that many children one after the other, each of
 * which makes N connects too and exits at once. Prints "connects T ok K"
 * (T all connects, K those that succeeded) and exits 0 if every connect
 * did. */
#include "common.h"

static sin4 sa;
static int n, pause_ms;

static void *connects(void *arg)
{
	int *ok = arg;
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			perror("connectmany: socket");
			exit(1);
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			(*ok)++;
		else
			fprintf(stderr, "connectmany: connect %d: %s\n", i, strerror(errno));
		close(fd);
		if (pause_ms > 0)
			usleep((useconds_t)pause_ms * 1000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 6) {
		fprintf(stderr, "usage: connectmany ADDR PORT N [PAUSE_MS [CHILDREN]]\n");
		return 2;
	}
	sa = (sin4){.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "connectmany: bad address %s\n", argv[1]);
		return 2;
	}
	n = atoi(argv[3]);
	pause_ms = argc >= 5 ? atoi(argv[4]) : 0;
	int children = argc == 6 ? atoi(argv[5]) : 0;
	int ok = 0;
	pthread_t worker;
	if (pthread_create(&worker, NULL, connects, &ok) != 0 || pthread_join(worker, NULL) != 0) {
		fprintf(stderr, "connectmany: no worker thread\n");
		return 1;
	}
	for (int c = 0; c < children; c++) {
		pid_t pid = fork();
		if (pid == 0) {
			int mine = 0;
			connects(&mine);
			exit(mine == n ? 0 : 1);
		}
		int status;
		if (pid < 0 || waitpid(pid, &status, 0) != pid) {
			perror("connectmany: child");
			return 1;
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			ok += n;
	}
	printf("connects %d ok %d\n", n * (children + 1), ok);
	fflush(stdout);
	exit(ok == n * (children + 1) ? 0 : 1);
}
