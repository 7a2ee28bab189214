/*
 * Logging: one line to stderr per call, formatted on the stack and written
 * with write(2) (no stdio, no malloc: callers may be in a signal handler).
 * Not when stderr is a TCP connection: inetd-style servers (vsftpd's
 * sessions, xinetd's and systemd's Accept=yes services) give the client's
 * socket as fds 0, 1 and 2, and a line there is read by the client as part
 * of the protocol (an FTP reply).
 */
#include "shim.h"

#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct line {
	char buf[512];
	size_t n;
};

static void put(struct line *l, const char *s, size_t len)
{
	size_t room = sizeof l->buf - 1 - l->n; /* keep one byte for '\n' */
	if (len > room)
		len = room;
	memcpy(l->buf + l->n, s, len);
	l->n += len;
}

static void put_str(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void put_num(struct line *l, unsigned long v, unsigned int base)
{
	char d[24];
	char *p = d + sizeof d;
	do {
		*--p = "0123456789abcdef"[v % base];
		v /= base;
	} while (v > 0);
	put(l, p, (size_t)(d + sizeof d - p));
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

/* Whether fd is a socket of the network (the app's peer), not a file, a
 * pipe or a unix socket (a terminal, a log collector, journald). */
static bool to_a_peer(int fd)
{
	int domain = 0;
	socklen_t len = sizeof domain;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0)
		return false;
	return domain == AF_INET || domain == AF_INET6;
}

void slim_log(const char *fmt, ...)
{
	int saved = errno;
	if (to_a_peer(STDERR_FILENO)) {
		errno = saved;
		return;
	}
	struct line l = {.n = 0};
	va_list ap;
	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%' || f[1] == '\0') {
			put(&l, f, 1);
			continue;
		}
		switch (*++f) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			put_str(&l, s ? s : "(null)");
			break;
		}
		case 'd': {
			int v = va_arg(ap, int);
			if (v < 0) {
				put(&l, "-", 1);
				put_num(&l, -(unsigned long)(long)v, 10);
			} else {
				put_num(&l, (unsigned long)v, 10);
			}
			break;
		}
		case 'u':
			put_num(&l, va_arg(ap, unsigned int), 10);
			break;
		case 'x':
			put_num(&l, va_arg(ap, unsigned int), 16);
			break;
		case 'A': {
			uint32_t a = va_arg(ap, uint32_t);
			const uint8_t *b = (const uint8_t *)&a;
			for (int i = 0; i < 4; i++) {
				if (i)
					put(&l, ".", 1);
				put_num(&l, b[i], 10);
			}
			break;
		}
		case 'P': {
			unsigned int p = va_arg(ap, unsigned int);
			put_num(&l, ((p & 0xff) << 8) | ((p >> 8) & 0xff), 10);
			break;
		}
		default:
			put(&l, f - 1, 2);
			break;
		}
	}
	va_end(ap);
	l.buf[l.n++] = '\n';
	write_all(STDERR_FILENO, l.buf, l.n);
	errno = saved;
}

const char *slim_errname(int err)
{
	switch (err) {
	case ENOENT: return "no such file or directory";
	case ECONNREFUSED: return "connection refused";
	case ETIMEDOUT: return "timed out";
	case EACCES: return "permission denied";
	case EPERM: return "operation not permitted";
	case EAGAIN: return "resource temporarily unavailable";
	case ECONNRESET: return "connection reset";
	case EPIPE: return "broken pipe";
	case EPROTO: return "protocol error";
	case EMFILE: return "too many open files";
	case ENOTSOCK: return "not a socket";
	case EBADMSG: return "bad message";
	case EOPNOTSUPP: return "operation not supported";
	default: return NULL;
	}
}
