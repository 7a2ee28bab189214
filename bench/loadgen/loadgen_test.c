/*
 * Unit tests of slim-loadgen's pieces: the histogram, the schedule and the
 * response parsers. Built and run by TestLoadgenUnits (bench package):
 *   gcc -Wall -Wextra -Werror hist.c proto.c sched.c loadgen_test.c
 * Prints one line per failure and "N passed, N failed" last; exit status 1
 * if any failed.
 */
#include "loadgen.h"

#include <stdio.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, ...)                                                          \
	do {                                                                      \
		if (cond) {                                                       \
			passed++;                                                 \
		} else {                                                          \
			failed++;                                                 \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);               \
			printf(__VA_ARGS__);                                      \
			printf("\n");                                             \
		}                                                                 \
	} while (0)

static struct hist h; /* large: static */

static void test_hist(void)
{
	size_t previous = 0;
	for (uint64_t v = 0; v < (1u << 20); v += 1 + v / 64) {
		size_t i = hist_index(v);
		CHECK(i >= previous, "index(%llu) = %zu goes backwards", (unsigned long long)v, i);
		previous = i;
		uint64_t mid = hist_value(i);
		uint64_t diff = mid > v ? mid - v : v - mid;
		CHECK(diff * 128 <= v + 64, "value %llu in bucket of midpoint %llu", (unsigned long long)v,
		      (unsigned long long)mid);
	}
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		CHECK(hist_index(hist_value(i)) == i, "bucket %zu's midpoint maps elsewhere", i);
	CHECK(hist_index((uint64_t)1 << 60) == HIST_BUCKETS - 1, "huge values go in the last bucket");

	memset(&h, 0, sizeof h);
	CHECK(hist_percentile(&h, 50) == 0, "empty histogram has a median");
	for (uint64_t v = 1; v <= 1000; v++)
		hist_add(&h, v * 1000);
	uint64_t p50 = hist_percentile(&h, 50), p99 = hist_percentile(&h, 99), p100 = hist_percentile(&h, 100);
	CHECK(p50 > 496000 && p50 < 504000, "p50 %llu, want ~500000", (unsigned long long)p50);
	CHECK(p99 > 982000 && p99 < 998000, "p99 %llu, want ~990000", (unsigned long long)p99);
	CHECK(p100 == 1000000, "p100 %llu, want the maximum", (unsigned long long)p100);
	CHECK(h.count == 1000 && h.max == 1000000, "count %llu max %llu", (unsigned long long)h.count,
	      (unsigned long long)h.max);
}

static void test_schedule(void)
{
	/* 1000/s from t=1s; measured from 1.5s to 3.5s. */
	struct schedule s = {.rate = 1000, .start = 1000000000, .measure_from = 1500000000, .measure_until = 3500000000};
	CHECK(sched_due(&s, 0) == 1000000000, "request 0 due at the start");
	CHECK(sched_due(&s, 1500) == 2500000000, "request 1500 due at 2.5 s");
	CHECK(sched_total(&s) == 2500, "total %llu, want 2500 (2.5 s at 1000/s)", (unsigned long long)sched_total(&s));
	CHECK(sched_due_before(&s, s.measure_from) == 500, "500 due before the measured part");
	CHECK(sched_due_by(&s, 999999999) == 0, "none due before the start");
	CHECK(sched_due_by(&s, 1000000000) == 1, "one due at the start");
	CHECK(sched_due_by(&s, 1001000000) == 2, "two due 1 ms in");
	CHECK(sched_due_by(&s, 9000000000) == 2500, "never more than the total");
	CHECK(!sched_measured(&s, 1499999999) && sched_measured(&s, 1500000000) && !sched_measured(&s, 3500000000),
	      "measured part is [from, until)");
	/* A rate that does not divide a second: the count is still exact. */
	struct schedule odd = {.rate = 3, .start = 0, .measure_from = 0, .measure_until = 1000000000};
	CHECK(sched_total(&odd) == 3, "3/s for 1 s: %llu", (unsigned long long)sched_total(&odd));
	struct schedule fast = {.rate = 70001, .start = 5, .measure_from = 5, .measure_until = 2000000005};
	CHECK(sched_total(&fast) == 140002, "70001/s for 2 s: %llu", (unsigned long long)sched_total(&fast));
}

static ssize_t parse(enum proto p, bool is_set, const char *text)
{
	char err[160];
	return proto_response(p, is_set, text, strlen(text), err, sizeof err);
}

/* Every strict prefix of a whole response is incomplete, not an error. */
static void check_prefixes(enum proto p, bool is_set, const char *text)
{
	char err[160];
	size_t len = strlen(text);
	for (size_t n = 0; n < len; n++)
		CHECK(proto_response(p, is_set, text, n, err, sizeof err) == 0, "%zu bytes of %s: %s", n, text, err);
	CHECK(proto_response(p, is_set, text, len, err, sizeof err) == (ssize_t)len, "whole %s", text);
}

static void test_memcached(void)
{
	check_prefixes(PROTO_MEMCACHED, false, "VALUE slim:000001 0 5\r\nab\r\nc\r\nEND\r\n");
	check_prefixes(PROTO_MEMCACHED, false, "VALUE k 3 2 99\r\nxy\r\nEND\r\n");
	check_prefixes(PROTO_MEMCACHED, false, "END\r\n");
	check_prefixes(PROTO_MEMCACHED, true, "STORED\r\n");
	CHECK(parse(PROTO_MEMCACHED, false, "END\r\nEND\r\n") == 5, "only the first response");
	CHECK(parse(PROTO_MEMCACHED, true, "SERVER_ERROR out of memory\r\n") < 0, "server error");
	CHECK(parse(PROTO_MEMCACHED, false, "ERROR\r\n") < 0, "error");
	CHECK(parse(PROTO_MEMCACHED, false, "VALUE k 0 x\r\n") < 0, "bad length");
	CHECK(parse(PROTO_MEMCACHED, false, "VALUE k 0 2\r\nxyEND\r\n\r\n") < 0, "value not followed by END");
	char err[160];
	bool refused = proto_response(PROTO_MEMCACHED, true, "SERVER_ERROR busy\r\n", 19, err, sizeof err) < 0;
	CHECK(refused && strstr(err, "SERVER_ERROR busy") != NULL, "error text names what the server said: %s", err);
	char line[2048];
	memset(line, 'a', sizeof line);
	CHECK(proto_response(PROTO_MEMCACHED, false, line, sizeof line, err, sizeof err) < 0, "endless line");
}

static void test_redis(void)
{
	check_prefixes(PROTO_REDIS, false, "$5\r\nab\r\nc\r\n");
	check_prefixes(PROTO_REDIS, false, "$-1\r\n");
	check_prefixes(PROTO_REDIS, true, "+OK\r\n");
	CHECK(parse(PROTO_REDIS, true, "-ERR wrong\r\n") < 0, "error reply");
	CHECK(parse(PROTO_REDIS, false, "+OK\r\n") < 0, "GET answered with a status");
	CHECK(parse(PROTO_REDIS, false, "$2\r\nabc\r\n") < 0, "bulk string too long");
}

static void test_http(void)
{
	check_prefixes(PROTO_HTTP, false, "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 4\r\n\r\nbody");
	check_prefixes(PROTO_HTTP, false, "HTTP/1.1 200 OK\r\ncontent-length:0\r\n\r\n");
	CHECK(parse(PROTO_HTTP, false, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n") < 0, "404");
	CHECK(parse(PROTO_HTTP, false, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") < 0, "chunked");
	CHECK(parse(PROTO_HTTP, false, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n") < 0,
	      "closing server");
	CHECK(parse(PROTO_HTTP, false, "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n") < 0, "no length");
	CHECK(parse(PROTO_HTTP, false, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP") == 40, "one response");
}

static void test_requests(void)
{
	char buf[PROTO_MAX_REQUEST];
	struct workload kv = {.proto = PROTO_MEMCACHED, .value = "xyz", .value_len = 3};
	size_t n = proto_request(&kv, false, 7, buf);
	CHECK(n == strlen("get slim:000007\r\n") && memcmp(buf, "get slim:000007\r\n", n) == 0, "memcached get");
	n = proto_request(&kv, true, 7, buf);
	CHECK(n == strlen("set slim:000007 0 0 3\r\nxyz\r\n") && memcmp(buf, "set slim:000007 0 0 3\r\nxyz\r\n", n) == 0,
	      "memcached set");
	kv.proto = PROTO_REDIS;
	n = proto_request(&kv, true, 7, buf);
	const char *set = "*3\r\n$3\r\nSET\r\n$11\r\nslim:000007\r\n$3\r\nxyz\r\n";
	CHECK(n == strlen(set) && memcmp(buf, set, n) == 0, "redis set: %.*s", (int)n, buf);
	struct workload web = {.proto = PROTO_HTTP, .path = "/1k.html", .host = "198.19.1.2"};
	n = proto_request(&web, false, 0, buf);
	const char *get = "GET /1k.html HTTP/1.1\r\nHost: 198.19.1.2\r\n\r\n";
	CHECK(n == strlen(get) && memcmp(buf, get, n) == 0, "http get");
}

int main(void)
{
	test_hist();
	test_schedule();
	test_memcached();
	test_redis();
	test_http();
	test_requests();
	printf("%d passed, %d failed\n", passed, failed);
	return failed > 0;
}
