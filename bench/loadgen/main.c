/*
 * slim-loadgen --proto memcached|redis|http --host IPV4 --port N --duration S
 *              [--rate R] [--conns N] [--warmup S] [--drain S] [--path P]
 *              [--keys N] [--value-size B] [--set-ratio F]
 *
 * Opens --conns connections, each carrying one request at a time. With
 * --rate R > 0 (open loop), request n is due at start + n/R whether or not
 * earlier ones were answered; a due request waits for a free connection,
 * and its latency is measured from when it was due, not from when it was
 * sent, so a stall shows in the percentiles (no coordinated omission).
 * Without --rate (closed loop) a free connection sends at once: the peak.
 *
 * Timeline: connect, prefill the keys (memcached, redis), --warmup seconds
 * of load that are not measured, --duration seconds measured, then up to
 * --drain seconds to collect the answers still due. Two lines on stdout,
 * "slim-bench: measure start" and "slim-bench: measure end", mark the
 * measured part as it happens (the bench reads CPU counters on each), then
 * one JSON line reports it: "scheduled" requests were due in the measured
 * part (open loop), "completed" of them were answered and "unanswered"
 * were not by the end of the drain (counted in the percentiles at their
 * wait so far); "achieved" is the answers that arrived during the
 * measured part per second, whenever due, so it falls below the rate when
 * the server cannot keep up; latency_us are percentiles from when each
 * request was due; send_lag_us, of the generator's own delay in sending;
 * service_us, from when each answered request was sent.
 * Errors go to stderr with exit status 1.
 */
#include "loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_CAP (64 * 1024)
#define MAX_EVENTS 64


struct conn {
	int fd;
	bool busy;      /* a request is outstanding */
	bool is_set;    /* what it is */
	bool measured;  /* it counts */
	bool want_out;  /* EPOLLOUT is registered */
	uint64_t due;   /* when it was due, ns */
	uint64_t sent;  /* when it was sent, ns */
	size_t out_len, out_off;
	size_t in_len;
	char out[PROTO_MAX_REQUEST];
	char in[IN_CAP];
};

/* Counters of the measured requests: latency from when each was due, the
 * generator's own lag, from when it was due to when it was sent, and the
 * service latency, from when it was sent; and the answers that arrived
 * during the measured part, whenever due. */
struct tally {
	uint64_t completed, sets, misses, in_window;
	struct hist hist, lag, service;
};

static struct conn conns[MAX_CONNS];
static struct tally tally;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t seconds_ns(double s) { return (uint64_t)(s * 1e9); }

/* ---- connections ---------------------------------------------------------- */

static int connect_to(const char *host, int port)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		die("--host %s: want an IPv4 address", host);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		die("TCP_NODELAY: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		die("connecting to %s:%d: %s", host, port, strerror(errno));
	return fd;
}

/* Writes all of buf on a blocking socket. */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write: %s", n < 0 ? strerror(errno) : "wrote nothing");
		buf += n;
		len -= (size_t)n;
	}
}

/* Sets every key once on a blocking connection, so that gets hit. */
static void prefill(const struct options *o, struct conn *c)
{
	char err[160];
	for (unsigned key = 0; key < o->keys; key++) {
		size_t len = proto_request(&o->work, true, key, c->out);
		if (len == 0)
			die("request does not fit");
		write_all(c->fd, c->out, len);
		size_t have = 0;
		ssize_t done;
		while ((done = proto_response(o->work.proto, true, c->in, have, err, sizeof err)) == 0) {
			ssize_t n = read(c->fd, c->in + have, IN_CAP - have);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				die("prefill: %s", n < 0 ? strerror(errno) : "the server closed the connection");
			have += (size_t)n;
		}
		if (done < 0)
			die("prefill: %s", err);
		if ((size_t)done != have)
			die("prefill: %zu unexpected bytes after the answer", have - (size_t)done);
	}
}

static void set_events(int ep, struct conn *c, bool want_out)
{
	struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->want_out = want_out;
}

static void flush_out(int ep, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!c->want_out)
				set_events(ep, c, true);
			return;
		}
		if (n <= 0)
			die("write: %s", n < 0 ? strerror(errno) : "wrote nothing");
		c->out_off += (size_t)n;
	}
	if (c->want_out)
		set_events(ep, c, false);
}

/* ---- the request mix ------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void send_request(int ep, const struct options *o, const struct schedule *s, struct conn *c, uint64_t due)
{
	uint64_t r = rng_next();
	bool kv = o->work.proto != PROTO_HTTP;
	c->is_set = kv && (double)(r % 1000000) < o->set_ratio * 1e6;
	unsigned key = (unsigned)((r >> 20) % o->keys);
	c->out_len = proto_request(&o->work, c->is_set, key, c->out);
	if (c->out_len == 0)
		die("request does not fit");
	c->out_off = 0;
	c->due = due;
	c->measured = sched_measured(s, due);
	c->busy = true;
	c->sent = now_ns();
	if (c->measured)
		hist_add(&tally.lag, c->sent > due ? c->sent - due : 0);
	flush_out(ep, c);
}

/* ---- the loop ------------------------------------------------------------- */

struct loop {
	const struct options *o;
	struct schedule s;
	int ep;
	bool open;               /* open loop */
	uint64_t total;          /* open loop: requests in the schedule */
	uint64_t next;           /* the next request of the schedule to send */
	struct conn *idle[MAX_CONNS];
	int n_idle;
	int outstanding;
};

/* Reads what a connection has and completes its response, if whole. One
 * read usually holds the whole answer: read again only while it is not
 * whole (a connection carries one request at a time). */
static void on_readable(struct loop *l, struct conn *c, uint64_t now)
{
	char err[160];
	ssize_t done = 0;
	while (done == 0) {
		if (c->in_len == IN_CAP)
			die("a response is larger than %d bytes", IN_CAP);
		ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0)
			die("read: %s", strerror(errno));
		if (n == 0)
			die("the server closed a connection");
		c->in_len += (size_t)n;
		if (!c->busy)
			die("%zu bytes the server sent unasked", c->in_len);
		done = proto_response(l->o->work.proto, c->is_set, c->in, c->in_len, err, sizeof err);
		if (done < 0)
			die("%s", err);
	}
	if ((size_t)done != c->in_len)
		die("%zu bytes after a response, unasked", c->in_len - (size_t)done);
	c->in_len = 0;
	c->busy = false;
	l->outstanding--;
	l->idle[l->n_idle++] = c;
	if (now >= l->s.measure_from && now < l->s.measure_until)
		tally.in_window++;
	if (c->measured) {
		tally.completed++;
		hist_add(&tally.hist, now - c->due);
		hist_add(&tally.service, now - c->sent);
		if (c->is_set)
			tally.sets++;
		else if (l->o->work.proto == PROTO_MEMCACHED ? done == 5 : done == 5 && c->in[1] == '-')
			tally.misses++;
	}
}

/* Sends what is due on idle connections. */
static void issue(struct loop *l, uint64_t now)
{
	if (!l->open) {
		if (now >= l->s.measure_until)
			return;
		while (l->n_idle > 0) {
			l->outstanding++;
			send_request(l->ep, l->o, &l->s, l->idle[--l->n_idle], now);
		}
		return;
	}
	uint64_t due = sched_due_by(&l->s, now);
	while (l->next < due && l->n_idle > 0) {
		l->outstanding++;
		send_request(l->ep, l->o, &l->s, l->idle[--l->n_idle], sched_due(&l->s, l->next));
		l->next++;
	}
}

/* How long to wait for events: until the next request is due (if a
 * connection is free for it) or the next phase begins, whichever is first. */
static uint64_t wake_at(struct loop *l, uint64_t deadline, uint64_t now)
{
	uint64_t at = deadline;
	if (now < l->s.measure_from && l->s.measure_from < at)
		at = l->s.measure_from;
	if (now < l->s.measure_until && l->s.measure_until < at)
		at = l->s.measure_until;
	if (l->open && l->next < l->total && l->n_idle > 0) {
		uint64_t due = sched_due(&l->s, l->next);
		if (due < at)
			at = due;
	}
	return at;
}

static int wait_events(int ep, struct epoll_event *events, uint64_t at, uint64_t now)
{
	uint64_t wait = at > now ? at - now : 0;
	struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000u), .tv_nsec = (long)(wait % 1000000000u)};
	int n = epoll_pwait2(ep, events, MAX_EVENTS, &ts, NULL);
	if (n < 0 && errno == ENOSYS) /* before Linux 5.11: round up to a millisecond */
		n = epoll_wait(ep, events, MAX_EVENTS, (int)((wait + 999999) / 1000000));
	if (n < 0 && errno != EINTR)
		die("epoll_wait: %s", strerror(errno));
	return n < 0 ? 0 : n;
}

static void marker(const char *what)
{
	printf("slim-bench: measure %s\n", what);
	fflush(stdout);
}

/* Runs the schedule until every request is answered or the drain deadline
 * passes; returns the measured requests left unanswered, each counted in
 * the histogram at its latency so far. */
static uint64_t run(struct loop *l)
{
	struct epoll_event events[MAX_EVENTS];
	uint64_t deadline = l->s.measure_until + seconds_ns(l->o->drain);
	bool started = false;
	for (;;) {
		uint64_t now = now_ns();
		if (!started && now >= l->s.measure_from) {
			marker("start");
			started = true;
		}
		issue(l, now);
		bool sent_all = !l->open ? now >= l->s.measure_until : l->next >= l->total;
		if ((sent_all && l->outstanding == 0) || now >= deadline)
			break;
		int n = wait_events(l->ep, events, wake_at(l, deadline, now), now);
		now = now_ns();
		for (int i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;
			if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(l, c, now);
			if ((events[i].events & EPOLLOUT) && c->busy)
				flush_out(l->ep, c);
		}
	}
	if (!started)
		marker("start");
	uint64_t end = now_ns(), unanswered = 0;
	for (int i = 0; i < l->o->conns; i++) {
		if (conns[i].busy && conns[i].measured) {
			unanswered++;
			hist_add(&tally.hist, end - conns[i].due);
		}
	}
	for (uint64_t n = l->next; l->open && n < l->total; n++) {
		uint64_t due = sched_due(&l->s, n);
		if (sched_measured(&l->s, due)) {
			unanswered++;
			hist_add(&tally.hist, end > due ? end - due : 0);
		}
	}
	marker("end");
	return unanswered;
}

static double us(uint64_t ns) { return (double)ns / 1000.0; }

static void report(const struct options *o, const struct loop *l, uint64_t unanswered)
{
	const struct hist *h = &tally.hist, *lag = &tally.lag, *service = &tally.service;
	uint64_t scheduled = l->open ? l->total - sched_due_before(&l->s, l->s.measure_from) : 0;
	printf("{\"proto\":\"%s\",\"conns\":%d,\"rate\":%.3f,\"warmup_s\":%.3f,\"duration_s\":%.3f,"
	       "\"scheduled\":%llu,\"completed\":%llu,\"unanswered\":%llu,\"sets\":%llu,\"misses\":%llu,"
	       "\"achieved\":%.3f,\"latency_us\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
	       "\"max\":%.3f,\"mean\":%.3f},\"send_lag_us\":{\"p50\":%.3f,\"p99\":%.3f},"
	       "\"service_us\":{\"p50\":%.3f,\"p99\":%.3f}}\n",
	       proto_name(o->work.proto), o->conns, o->rate, o->warmup, o->duration, (unsigned long long)scheduled,
	       (unsigned long long)tally.completed, (unsigned long long)unanswered, (unsigned long long)tally.sets,
	       (unsigned long long)tally.misses, (double)tally.in_window / o->duration,
	       us(hist_percentile(h, 50)), us(hist_percentile(h, 90)), us(hist_percentile(h, 99)),
	       us(hist_percentile(h, 99.9)), us(h->max), h->count ? h->sum / (double)h->count / 1000.0 : 0.0,
	       us(hist_percentile(lag, 50)), us(hist_percentile(lag, 99)), us(hist_percentile(service, 50)),
	       us(hist_percentile(service, 99)));
}

int main(int argc, char **argv)
{
	struct options o;
	parse_options(argc, argv, &o);
	/* Timers fire when asked, not up to 50 us later: the lateness of a
	 * wake-up would count in every latency. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	struct loop l = {.o = &o, .open = o.rate > 0};
	if ((l.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1: %s", strerror(errno));
	for (int i = 0; i < o.conns; i++)
		conns[i].fd = connect_to(o.host, o.port);
	if (o.work.proto != PROTO_HTTP)
		prefill(&o, &conns[0]);
	for (int i = 0; i < o.conns; i++) {
		struct conn *c = &conns[i];
		if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0)
			die("fcntl: %s", strerror(errno));
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		if (epoll_ctl(l.ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
			die("epoll_ctl: %s", strerror(errno));
		l.idle[l.n_idle++] = c;
	}
	l.s.rate = o.rate;
	l.s.start = now_ns();
	l.s.measure_from = l.s.start + seconds_ns(o.warmup);
	l.s.measure_until = l.s.measure_from + seconds_ns(o.duration);
	if (l.open)
		l.total = sched_total(&l.s);
	uint64_t unanswered = run(&l);
	report(&o, &l, unanswered);
	return 0;
}
