/* Blocking connect: success, refusal (ECONNREFUSED), echo, EISCONN. */
#include "common.h"

static void client(const sin4 *target, const sin4 *refused)
{
	char err[256];
	struct hello h;

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	int e = errno;
	CHECK("connect_ok", r == 0, "connect %s: %s", SA(target), strerror(e));
	if (r < 0)
		return;
	print_addr("client", fd, NULL);
	int hr = read_hello(fd, &h, err, sizeof err);
	CHECK("hello", hr == 0, "%s", err);
	if (hr == 0)
		CHECK("names_crosswise", hello_matches(fd, &h, err, sizeof err) == 0, "%s", err);
	CHECK("echo_small", echo_roundtrip(fd, fd, 100, 100, 1, err, sizeof err) == 0, "%s", err);
	CHECK("echo_1m", echo_roundtrip(fd, fd, 1 << 20, 16384, 2, err, sizeof err) == 0, "%s", err);

	r = connect(fd, (const struct sockaddr *)target, sizeof *target);
	e = errno;
	CHECK("connect_again_eisconn", r < 0 && e == EISCONN, "second connect: r=%d %s", r, strerror(e));
	CHECK("so_error_zero", so_error(fd) == 0, "SO_ERROR=%d", so_error(fd));

	/* Our close gives the server EOF; it closes; we see EOF after shutdown. */
	shutdown(fd, SHUT_WR);
	CHECK("eof_after_shutdown", wait_eof(fd, IO_MS) == 1, "no EOF from server after our SHUT_WR");
	close(fd);

	/* Refused: nobody listens on refused. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	r = connect(fd, (const struct sockaddr *)refused, sizeof *refused);
	e = errno;
	CHECK("connect_refused", r < 0 && e == ECONNREFUSED, "connect %s: r=%d errno=%s (want ECONNREFUSED)",
	      SA(refused), r, strerror(e));
	sin4 p;
	r = get_peer(fd, &p);
	e = errno;
	CHECK("refused_getpeername_enotconn", r < 0 && e == ENOTCONN, "getpeername after refusal: r=%d %s", r,
	      r < 0 ? strerror(e) : SA(&p));
	CHECK("refused_so_error_zero", so_error(fd) == 0, "SO_ERROR after blocking refusal = %d (already reported)",
	      so_error(fd));
	close(fd);

	/* A few more connections in a row: each gets its own HELLO. */
	int okc = 0;
	for (int i = 0; i < 5; i++) {
		int c = connect_hello(target, &h, err, sizeof err);
		if (c < 0)
			break;
		if (echo_roundtrip(c, c, 1000, 1000, 3 + (unsigned)i, err, sizeof err) == 0)
			okc++;
		close(c);
	}
	CHECK("connect_5_in_a_row", okc == 5, "only %d of 5: %s", okc, err);
	check_server_clean(&h);
}

int main(int argc, char **argv)
{
	static const struct prog p = {.name = "connect_block", .alarm_s = 10, .client = client};
	return prog_main(argc, argv, &p);
}
