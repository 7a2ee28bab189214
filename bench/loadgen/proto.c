#include "loadgen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A response line longer than this without its CRLF is an error, not a
 * partial read: no valid response of ours has one. */
#define MAX_LINE 1024
/* HTTP headers longer than this are an error. */
#define MAX_HEADERS 16384

static const char *names[] = {[PROTO_MEMCACHED] = "memcached", [PROTO_REDIS] = "redis", [PROTO_HTTP] = "http"};

bool proto_parse(const char *name, enum proto *out)
{
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum proto)i;
			return true;
		}
	}
	return false;
}

const char *proto_name(enum proto proto) { return names[proto]; }

static size_t fits(int n)
{
	return n > 0 && n < PROTO_MAX_REQUEST ? (size_t)n : 0;
}

size_t proto_request(const struct workload *w, bool is_set, unsigned key, char *buf)
{
	char name[32];
	int klen = snprintf(name, sizeof name, "slim:%06u", key);
	int n;
	switch (w->proto) {
	case PROTO_MEMCACHED:
		if (!is_set)
			return fits(snprintf(buf, PROTO_MAX_REQUEST, "get %s\r\n", name));
		n = snprintf(buf, PROTO_MAX_REQUEST, "set %s 0 0 %zu\r\n%.*s\r\n", name, w->value_len,
			     (int)w->value_len, w->value);
		return fits(n);
	case PROTO_REDIS:
		if (!is_set)
			return fits(snprintf(buf, PROTO_MAX_REQUEST, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", klen, name));
		n = snprintf(buf, PROTO_MAX_REQUEST, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%zu\r\n%.*s\r\n", klen,
			     name, w->value_len, (int)w->value_len, w->value);
		return fits(n);
	case PROTO_HTTP:
		return fits(snprintf(buf, PROTO_MAX_REQUEST, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", w->path, w->host));
	}
	return 0;
}

static ssize_t fail(char *err, size_t err_len, const char *what, const char *buf, size_t len)
{
	size_t show = len;
	const char *crlf = memchr(buf, '\r', len);
	if (crlf != NULL)
		show = (size_t)(crlf - buf);
	if (show > 80)
		show = 80;
	snprintf(err, err_len, "%s: \"%.*s\"", what, (int)show, buf);
	return -1;
}

/* The length of the line at buf, its CRLF included; 0 if incomplete, -1 if
 * it is too long to be one. */
static ssize_t line_length(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len && i < MAX_LINE; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n')
			return (ssize_t)(i + 2);
	}
	return len >= MAX_LINE ? -1 : 0;
}

static bool starts(const char *buf, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(buf, prefix, n) == 0;
}

/* Parses a decimal number ending at the CR of a line, or at a space. */
static bool number(const char *p, const char *end, long long *out)
{
	char digits[24];
	size_t n = 0;
	bool negative = false;
	if (p < end && *p == '-') {
		negative = true;
		p++;
	}
	while (p < end && *p >= '0' && *p <= '9' && n < sizeof digits - 1)
		digits[n++] = *p++;
	if (n == 0 || n >= 19 || (p < end && *p != '\r' && *p != ' '))
		return false;
	digits[n] = 0;
	*out = strtoll(digits, NULL, 10) * (negative ? -1 : 1);
	return true;
}

static ssize_t memcached_response(bool is_set, const char *buf, size_t len, char *err, size_t err_len)
{
	ssize_t line = line_length(buf, len);
	if (line < 0)
		return fail(err, err_len, "memcached: line too long", buf, len);
	if (line == 0)
		return 0;
	if (is_set) {
		if (line == 8 && starts(buf, len, "STORED\r\n"))
			return line;
		return fail(err, err_len, "memcached: set answered", buf, len);
	}
	if (line == 5 && starts(buf, len, "END\r\n"))
		return line;
	if (!starts(buf, len, "VALUE "))
		return fail(err, err_len, "memcached: get answered", buf, len);
	/* VALUE <key> <flags> <bytes> [<cas>]\r\n */
	const char *p = buf + 6, *end = buf + line - 2;
	for (int field = 0; field < 2; field++) {
		p = memchr(p, ' ', (size_t)(end - p));
		if (p == NULL)
			return fail(err, err_len, "memcached: malformed VALUE line", buf, len);
		p++;
	}
	long long bytes;
	if (!number(p, end, &bytes) || bytes < 0 || bytes > (1 << 20))
		return fail(err, err_len, "memcached: malformed VALUE length", buf, len);
	size_t total = (size_t)line + (size_t)bytes + 2 + 5;
	if (len < total)
		return 0;
	if (memcmp(buf + line + bytes, "\r\nEND\r\n", 7) != 0)
		return fail(err, err_len, "memcached: value not followed by END", buf, len);
	return (ssize_t)total;
}

static ssize_t redis_response(bool is_set, const char *buf, size_t len, char *err, size_t err_len)
{
	ssize_t line = line_length(buf, len);
	if (line < 0)
		return fail(err, err_len, "redis: line too long", buf, len);
	if (line == 0)
		return 0;
	if (buf[0] == '-')
		return fail(err, err_len, "redis: error", buf, len);
	if (is_set) {
		if (line == 5 && starts(buf, len, "+OK\r\n"))
			return line;
		return fail(err, err_len, "redis: SET answered", buf, len);
	}
	long long bytes;
	if (buf[0] != '$' || !number(buf + 1, buf + line - 2, &bytes) || bytes < -1 || bytes > (1 << 20))
		return fail(err, err_len, "redis: GET answered", buf, len);
	if (bytes == -1)
		return line;
	size_t total = (size_t)line + (size_t)bytes + 2;
	if (len < total)
		return 0;
	if (memcmp(buf + total - 2, "\r\n", 2) != 0)
		return fail(err, err_len, "redis: bulk string not followed by CRLF", buf, len);
	return (ssize_t)total;
}

/* Finds header name (case-insensitive) in the header block [p, end) and
 * returns its value, or NULL. */
static const char *header(const char *p, const char *end, const char *name, size_t *value_len)
{
	size_t n = strlen(name);
	while (p < end) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (eol == NULL)
			eol = end;
		if ((size_t)(eol - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
			const char *v = p + n + 1;
			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*value_len = (size_t)(eol - v);
			return v;
		}
		p = eol + 2;
	}
	return NULL;
}

static bool value_is(const char *v, size_t len, const char *want)
{
	return v != NULL && len == strlen(want) && strncasecmp(v, want, len) == 0;
}

static ssize_t http_response(const char *buf, size_t len, char *err, size_t err_len)
{
	const char *end = memmem(buf, len < MAX_HEADERS ? len : MAX_HEADERS, "\r\n\r\n", 4);
	if (end == NULL)
		return len >= MAX_HEADERS ? fail(err, err_len, "http: headers too long", buf, len) : 0;
	size_t head = (size_t)(end - buf) + 4;
	if (!starts(buf, len, "HTTP/1.1 200 ") && !starts(buf, len, "HTTP/1.0 200 "))
		return fail(err, err_len, "http: status", buf, len);
	const char *first = memmem(buf, head, "\r\n", 2) + 2;
	size_t vlen = 0;
	const char *v = header(first, end + 2, "Transfer-Encoding", &vlen);
	if (v != NULL)
		return fail(err, err_len, "http: chunked responses are not supported", buf, len);
	v = header(first, end + 2, "Connection", &vlen);
	if (value_is(v, vlen, "close"))
		return fail(err, err_len, "http: the server closes the connection (keep-alive needed)", buf, len);
	v = header(first, end + 2, "Content-Length", &vlen);
	long long body;
	if (v == NULL || !number(v, v + vlen, &body) || body < 0 || body > (1 << 24))
		return fail(err, err_len, "http: no valid Content-Length", buf, len);
	size_t total = head + (size_t)body;
	return len < total ? 0 : (ssize_t)total;
}

ssize_t proto_response(enum proto proto, bool is_set, const char *buf, size_t len, char *err, size_t err_len)
{
	switch (proto) {
	case PROTO_MEMCACHED:
		return memcached_response(is_set, buf, len, err, err_len);
	case PROTO_REDIS:
		return redis_response(is_set, buf, len, err, err_len);
	case PROTO_HTTP:
		return http_response(buf, len, err, err_len);
	}
	snprintf(err, err_len, "unknown protocol");
	return -1;
}
