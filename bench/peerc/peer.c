/*
 * The C twin of bench/peer (the Go client and server of
 * `slim bench --supervised`): the same protocol, arguments and output.
 * Built by the bench twice: dynamically linked against glibc, so that
 * `slim exec` preloads the shim into it (the "preloaded" column), and
 * static, so that it runs under the supervisor (the "supervised-c"
 * column): the same program on both paths.
 *
 *   peer serve ADDR PORT                   serve until killed; prints "listening"
 *   peer stream|rr|crr ADDR PORT SECONDS   run the client; prints "result RATE"
 *
 * Like Go's net package, it sets TCP_NODELAY on every connection.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STREAM_CHUNK (128 * 1024)

static void die(const char *what)
{
	fprintf(stderr, "peer: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* handle serves a connection whose first byte was read: arg packs the
 * descriptor and that byte. */
static void *handle(void *arg)
{
	int fd = (int)((intptr_t)arg >> 8);
	char first = (char)((intptr_t)arg & 0xff);
	static __thread char buf[64 * 1024];
	if (first == 's') {
		uint64_t total = 0;
		ssize_t n;
		while ((n = read(fd, buf, sizeof buf)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				goto out;
			total += (uint64_t)n;
		}
		unsigned char count[8];
		for (int i = 0; i < 8; i++)
			count[i] = (unsigned char)(total >> (56 - 8 * i));
		write_all(fd, count, sizeof count);
		goto out;
	}
	if (write_all(fd, &first, 1) < 0)
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || write_all(fd, buf, (size_t)n) < 0)
			break;
	}
out:
	close(fd);
	return NULL;
}

_Noreturn static void serve(const struct sockaddr_in *addr)
{
	int ln = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (ln < 0)
		die("socket");
	setsockopt(ln, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(ln, (const struct sockaddr *)addr, sizeof *addr) < 0)
		die("bind");
	if (listen(ln, 4096) < 0)
		die("listen");
	printf("listening\n");
	fflush(stdout);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		int fd = accept4(ln, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		/* A connection per transaction is answered here: a thread
		 * started for each would cost more than the transaction. */
		char first = 0;
		nodelay(fd);
		if (read_full(fd, &first, 1) < 0 || first == 'c') {
			if (first == 'c')
				write_all(fd, &first, 1);
			close(fd);
			continue;
		}
		pthread_t t;
		intptr_t arg = (intptr_t)fd << 8 | (unsigned char)first;
		if (pthread_create(&t, &attr, handle, (void *)arg) != 0) {
			errno = EAGAIN;
			die("pthread_create");
		}
	}
}

static int dial(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	nodelay(fd);
	if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) < 0)
		die("connect");
	return fd;
}

static double stream(const struct sockaddr_in *addr, double duration)
{
	static char buf[STREAM_CHUNK];
	unsigned char count[8];
	int fd = dial(addr);
	double start = now();
	if (write_all(fd, "s", 1) < 0)
		die("write");
	while (now() - start < duration)
		if (write_all(fd, buf, sizeof buf) < 0)
			die("write");
	if (shutdown(fd, SHUT_WR) < 0)
		die("shutdown");
	if (read_full(fd, count, sizeof count) < 0)
		die("reading the count of bytes received");
	double elapsed = now() - start;
	uint64_t total = 0;
	for (int i = 0; i < 8; i++)
		total = total << 8 | count[i];
	close(fd);
	return (double)total * 8 / elapsed / 1e9;
}

static double rr(const struct sockaddr_in *addr, double duration)
{
	int fd = dial(addr);
	char c = 'r';
	long n = 0;
	double start = now();
	for (; now() - start < duration; n++)
		if (write_all(fd, &c, 1) < 0 || read_full(fd, &c, 1) < 0)
			die("round trip");
	double rate = (double)n / (now() - start);
	close(fd);
	return rate;
}

static double crr(const struct sockaddr_in *addr, double duration)
{
	long n = 0;
	double start = now();
	for (; now() - start < duration; n++) {
		int fd = dial(addr);
		char c = 'c';
		if (write_all(fd, &c, 1) < 0 || read_full(fd, &c, 1) < 0)
			die("transaction");
		close(fd);
	}
	return (double)n / (now() - start);
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	if (argc < 4) {
		fprintf(stderr, "usage: peer serve ADDR PORT | peer stream|rr|crr ADDR PORT SECONDS\n");
		return 2;
	}
	int port = atoi(argv[3]);
	if (inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1 || port <= 0 || port > 65535) {
		fprintf(stderr, "peer: bad address %s:%s\n", argv[2], argv[3]);
		return 2;
	}
	addr.sin_port = htons((uint16_t)port);
	if (strcmp(argv[1], "serve") == 0)
		serve(&addr);
	int seconds = argc == 5 ? atoi(argv[4]) : 0;
	if (seconds < 1) {
		fprintf(stderr, "peer: %s needs ADDR PORT SECONDS\n", argv[1]);
		return 2;
	}
	double rate;
	if (strcmp(argv[1], "stream") == 0)
		rate = stream(&addr, seconds);
	else if (strcmp(argv[1], "rr") == 0)
		rate = rr(&addr, seconds);
	else if (strcmp(argv[1], "crr") == 0)
		rate = crr(&addr, seconds);
	else {
		fprintf(stderr, "peer: unknown command %s\n", argv[1]);
		return 2;
	}
	printf("result %.3f\n", rate);
	return 0;
}
