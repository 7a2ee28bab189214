/*
 * slim-loadgen: an open-loop load generator for `slim bench --fixed-load`.
 *
 *   hist.c     log-linear latency histogram and its percentiles
 *   proto.c    requests and response parsing: memcached text get/set,
 *              redis RESP GET/SET, HTTP/1.1 keep-alive GET
 *   sched.c    the fixed-rate schedule (intended send times, phases)
 *   options.c  the command line
 *   main.c     connections, the epoll loop, the JSON report
 *
 * It is a dynamically linked glibc program on purpose: `slim exec` can
 * preload the shim into it, so it measures Slim's accelerated sockets.
 * libc only.
 */
#ifndef SLIM_LOADGEN_H
#define SLIM_LOADGEN_H

#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- histogram (hist.c) ------------------------------------------------ */

/*
 * Values (nanoseconds) below HIST_EXACT have a bucket each; above, every
 * power of two is cut into HIST_HALF buckets, so a bucket's midpoint is
 * within 1/128 of any value in it. Values of 2^HIST_MAX_BIT ns (about 73
 * minutes) and more share the last bucket.
 */
#define HIST_SUB_BITS 7
#define HIST_EXACT (1u << HIST_SUB_BITS)
#define HIST_HALF (HIST_EXACT / 2)
#define HIST_MAX_BIT 42
#define HIST_BUCKETS (HIST_EXACT + (HIST_MAX_BIT - HIST_SUB_BITS + 1) * HIST_HALF)

struct hist {
	uint64_t count;
	uint64_t max;
	double sum;
	uint64_t bucket[HIST_BUCKETS];
};

size_t hist_index(uint64_t value);
uint64_t hist_value(size_t index);
void hist_add(struct hist *h, uint64_t value);
/* The value at percentile pct (0 < pct <= 100): the smallest bucket value
 * at or below which pct% of the values lie, never above the maximum. 0 for
 * an empty histogram. */
uint64_t hist_percentile(const struct hist *h, double pct);

/* ---- protocols (proto.c) ----------------------------------------------- */

enum proto { PROTO_MEMCACHED, PROTO_REDIS, PROTO_HTTP };

/* What the requests ask for. */
struct workload {
	enum proto proto;
	const char *path;  /* HTTP: the page */
	const char *host;  /* HTTP: the Host header */
	const char *value; /* memcached, redis: the value sets store */
	size_t value_len;
};

#define PROTO_MAX_REQUEST 8192
#define PROTO_MAX_VALUE 4096

bool proto_parse(const char *name, enum proto *out);
const char *proto_name(enum proto proto);
/* Writes request number key (a get, or a set if is_set) into buf, which
 * holds PROTO_MAX_REQUEST bytes; returns its length, 0 if it does not fit. */
size_t proto_request(const struct workload *w, bool is_set, unsigned key, char *buf);

/* Response parsing: > 0 is the length of a complete response at the start
 * of buf, 0 means more bytes are needed, < 0 an error described in err. */
ssize_t proto_response(enum proto proto, bool is_set, const char *buf, size_t len,
		       char *err, size_t err_len);

/* ---- schedule (sched.c) ------------------------------------------------ */

/*
 * An open-loop schedule: request n is due at start + n / rate. Requests due
 * in [measure_from, measure_until) are measured; none due at or after
 * measure_until is sent. rate 0 is a closed loop: a request is due as soon
 * as a connection is free, and its due time is when it is sent.
 */
struct schedule {
	double rate; /* requests per second; 0: closed loop */
	uint64_t start, measure_from, measure_until; /* CLOCK_MONOTONIC ns */
};

/* When request n is due (open loop only). */
uint64_t sched_due(const struct schedule *s, uint64_t n);
/* How many requests are due at or before now (open loop only), never more
 * than are due before measure_until. */
uint64_t sched_due_by(const struct schedule *s, uint64_t now);
/* How many requests are due before until (open loop only). */
uint64_t sched_due_before(const struct schedule *s, uint64_t until);
/* How many requests the schedule sends in all (open loop only). */
uint64_t sched_total(const struct schedule *s);
bool sched_measured(const struct schedule *s, uint64_t due);

/* ---- the command line (options.c) -------------------------------------- */

/* Connections a client may open. */
#define MAX_CONNS 1024

/* What the command line asks for; parse_options exits with a message on
 * stderr if it asks for nothing sensible. */
struct options {
	struct workload work;
	const char *host;
	int port;
	int conns;
	double rate, warmup, duration, drain, set_ratio;
	unsigned keys;
};

void parse_options(int argc, char **argv, struct options *o);
/* Prints "slim-loadgen: " and the message on stderr and exits with status 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
