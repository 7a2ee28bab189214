/* Concurrency: 8 threads each run a bounded connect/HELLO/echo/close loop
 * while one thread sits blocked in accept() on a listener and another sits
 * blocked in read() on an idle connection. Nobody may stall (the original
 * shim held a global mutex across network round trips). */
#include "common.h"

#define NTHREADS 8
#define ITERS 200
#define STALL_MS 2000

struct wstat {
	int id, ok, fail;
	double max_ms;
	char err[320];
	sin4 local; /* this side's address, for unblocking the accept thread */
};

static const sin4 *g_target;
static atomic_int accept_returned, reader_returned, shutdown_done, workers_done;
static int accept_got_conn;
static ssize_t reader_result;

static void *worker(void *v)
{
	struct wstat *w = v;
	for (int k = 0; k < ITERS; k++) {
		double t0 = now_ms();
		struct hello h;
		char err[256];
		int fd = connect_hello(g_target, &h, err, sizeof err);
		if (fd >= 0) {
			if (k == 0) {
				get_local(fd, &w->local);
				if (w->id == 0)
					print_addr("client", fd, NULL);
			}
			if (echo_roundtrip(fd, fd, 32, 32, (unsigned)k, err, sizeof err) < 0) {
				close(fd);
				fd = -1;
			}
		}
		if (fd < 0) {
			if (!w->fail++)
				snprintf(w->err, sizeof w->err, "iteration %d: %s", k, err);
			continue;
		}
		close(fd);
		double dt = now_ms() - t0;
		if (dt > w->max_ms)
			w->max_ms = dt;
		w->ok++;
	}
	atomic_fetch_add(&workers_done, 1);
	return NULL;
}

static void *acceptor(void *v)
{
	int lfd = *(int *)v;
	int c = accept(lfd, NULL, NULL); /* blocks until main connects at the end */
	accept_got_conn = c >= 0;
	atomic_store(&accept_returned, 1 + atomic_load(&workers_done));
	if (c >= 0)
		close(c);
	return NULL;
}

static void *reader(void *v)
{
	int fd = *(int *)v;
	char c;
	reader_result = read(fd, &c, 1); /* blocks until main shuts the socket down */
	atomic_store(&reader_returned, 1 + atomic_load(&shutdown_done));
	return NULL;
}

static struct hello last;

static void client(const sin4 *target, const sin4 *refused)
{
	(void)refused;
	char err[256];
	g_target = target;

	sin4 any;
	mkaddr(&any, "0.0.0.0", 0);
	int lfd = listen_on(&any, 16, 0, NULL);
	CHECK("local_listener", lfd >= 0, "listen 0.0.0.0:0: %s", strerror(errno));
	int idle = connect_hello(target, &last, err, sizeof err);
	CHECK("idle_connection", idle >= 0, "%s", err);
	if (lfd < 0 || idle < 0)
		return;
	pthread_t ta, tr, tw[NTHREADS];
	pthread_create(&ta, NULL, acceptor, &lfd);
	pthread_create(&tr, NULL, reader, &idle);
	sleep_ms(200); /* let both block */
	CHECK("blocked_threads_blocked", !atomic_load(&accept_returned) && !atomic_load(&reader_returned),
	      "accept or read returned early");

	static struct wstat ws[NTHREADS];
	double t0 = now_ms();
	for (int i = 0; i < NTHREADS; i++) {
		ws[i].id = i;
		pthread_create(&tw[i], NULL, worker, &ws[i]);
	}
	int ok = 0, fail = 0;
	double mx = 0;
	const char *firsterr = "";
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(tw[i], NULL);
		ok += ws[i].ok;
		fail += ws[i].fail;
		if (ws[i].max_ms > mx)
			mx = ws[i].max_ms;
		if (ws[i].fail && !*firsterr)
			firsterr = ws[i].err;
	}
	double dt = now_ms() - t0;
	printf("# %d connections by %d threads in %.0f ms (%.0f/s), slowest %.1f ms\n", ok, NTHREADS, dt,
	       ok / (dt / 1000), mx);
	CHECK("workers_all_ok", ok == NTHREADS * ITERS && fail == 0, "%d ok, %d failed; first: %s", ok, fail,
	      firsterr);
	CHECK("no_stall", mx < STALL_MS, "slowest connect/echo/close took %.0f ms", mx);
	CHECK("accept_still_blocked_after_workers", !atomic_load(&accept_returned),
	      "blocked accept returned before we connected to it");

	/* Unblock the reader with shutdown, the acceptor with a connection to
	 * our own address (same IP as our connections, the listener's port). */
	atomic_store(&shutdown_done, 1);
	shutdown(idle, SHUT_RDWR);
	sin4 me = ws[0].local;
	me.sin_port = htons((uint16_t)sock_port(lfd));
	int c = connect_to(&me);
	CHECK("connect_to_own_listener", c >= 0, "connect %s: %s", SA(&me), strerror(errno));
	for (int i = 0; i < 500 && !(atomic_load(&accept_returned) && atomic_load(&reader_returned)); i++)
		sleep_ms(10);
	int ar = atomic_load(&accept_returned), rr = atomic_load(&reader_returned);
	CHECK("blocked_accept_completes", ar && accept_got_conn, "accept %s", ar ? "failed" : "still blocked");
	CHECK("blocked_read_woken_by_shutdown", rr == 2 && reader_result == 0, "reader returned=%d result=%zd", rr,
	      reader_result);
	if (ar && rr) {
		pthread_join(ta, NULL);
		pthread_join(tr, NULL);
	}
	if (c >= 0)
		close(c);
	close(idle);
	close(lfd);
	int f = connect_hello(target, &last, err, sizeof err);
	CHECK("final", f >= 0, "%s", err);
	if (f >= 0)
		close(f);
	check_server_clean(&last);
}

int main(int argc, char **argv)
{
	static const struct prog p = {.name = "threads", .alarm_s = 60, .client = client};
	return prog_main(argc, argv, &p);
}
