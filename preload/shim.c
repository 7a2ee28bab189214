/*
 * libslim: the shim slim preloads into container processes (LD_PRELOAD).
 *
 * This is a placeholder. It proves the build, embedding, extraction and
 * preloading path end to end, and nothing more: it intercepts no calls.
 * Socket interception (swapping router-provided host sockets in under the
 * application's file descriptors) arrives with the data-path work.
 *
 * Rules for this file: libc only, no stdio (the shim runs inside arbitrary
 * processes, before and around their own use of stdio), and it must build
 * cleanly with -Wall -Wextra -Werror.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLIM_EXPORT __attribute__((visibility("default")))

/* Read by slim and by tests to tell which shim a process loaded. */
SLIM_EXPORT const char *slim_shim_version = "slim-shim 0 (placeholder, no interception)";

/* Writes all of buf to fd, retrying short writes; gives up on error. */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* Formats v in decimal at the end of buf[0..size) and returns its start. */
static char *format_decimal(char *buf, size_t size, unsigned long v)
{
	char *p = buf + size;
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && p > buf);
	return p;
}

static void append(char **dst, const char *end, const char *src, size_t len)
{
	size_t room = (size_t)(end - *dst);
	if (len > room)
		len = room;
	memcpy(*dst, src, len);
	*dst += len;
}

__attribute__((constructor)) static void slim_shim_init(void)
{
	const char *debug = getenv("SLIM_DEBUG");
	if (debug == NULL || strcmp(debug, "1") != 0)
		return;

	static const char prefix[] = "slim: shim loaded (pid ";
	static const char suffix[] = ")\n";
	char digits[24];
	char *pid = format_decimal(digits, sizeof digits, (unsigned long)getpid());

	char line[sizeof prefix + sizeof digits + sizeof suffix];
	char *p = line;
	const char *end = line + sizeof line;
	append(&p, end, prefix, sizeof prefix - 1);
	append(&p, end, pid, (size_t)(digits + sizeof digits - pid));
	append(&p, end, suffix, sizeof suffix - 1);
	write_all(STDERR_FILENO, line, (size_t)(p - line));
}
