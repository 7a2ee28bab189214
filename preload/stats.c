/*
 * What the shim tells its router about itself (STATS, docs/protocol.md §1):
 * connects that fell back to the overlay, by reason, and a log2 histogram
 * of the time accelerated connects spent in connect(). Counters are
 * atomics; at most once a second, and only when something was counted, one
 * one-way message carries the deltas. Counts are taken out of the counters
 * only when the message is sent: while the shim leaves a failed router
 * alone, they wait (and the fallbacks of that time are reported when the
 * router is back). As the process exits, what is left is sent, back-off
 * or not, and the shim waits (at most STATS_EXIT_WAIT_MS) for the router
 * to answer a HELLO behind it, so that the router reads the report while
 * the process still exists (it identifies the sender by its process).
 * Nothing else here blocks or allocates.
 */
#include "shim.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define STATS_INTERVAL_MS 1000
#define STATS_EXIT_WAIT_MS 200 /* the most an exit waits for the router */

static _Atomic uint32_t fallbacks[SLIM_FB_COUNT];
static _Atomic uint32_t setups[SLIM_SETUP_BUCKETS];
static _Atomic int64_t last_sent_ms;
static _Atomic bool sent_any; /* this process sent a STATS */

int64_t slim_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Puts counts taken for a message that could not be sent back. */
static void put_back(const uint32_t *counts)
{
	for (int i = 0; i < SLIM_FB_COUNT; i++)
		atomic_fetch_add_explicit(&fallbacks[i], counts[i], memory_order_relaxed);
	for (int i = 0; i < SLIM_SETUP_BUCKETS; i++)
		atomic_fetch_add_explicit(&setups[i], counts[SLIM_FB_COUNT + i], memory_order_relaxed);
}

/*
 * Sends the counts gathered so far if the last STATS is a second old and
 * the router is not being left alone, or at once if exiting. Returns
 * whether it sent.
 */
static bool maybe_send(bool exiting)
{
	int64_t now = slim_now_ms();
	int64_t last = atomic_load_explicit(&last_sent_ms, memory_order_relaxed);
	if (!exiting && (now - last < STATS_INTERVAL_MS || slim_router_resting()))
		return false; /* the counts wait */
	if (!atomic_compare_exchange_strong(&last_sent_ms, &last, now))
		return false; /* another thread sends */
	uint32_t buf[2 + SLIM_FB_COUNT + SLIM_SETUP_BUCKETS];
	uint16_t head[2] = {SLIM_FB_COUNT, SLIM_SETUP_BUCKETS};
	memcpy(buf, head, sizeof head);
	buf[1] = 0;
	uint32_t any = 0;
	for (int i = 0; i < SLIM_FB_COUNT; i++)
		any |= buf[2 + i] = atomic_exchange_explicit(&fallbacks[i], 0, memory_order_relaxed);
	for (int i = 0; i < SLIM_SETUP_BUCKETS; i++)
		any |= buf[2 + SLIM_FB_COUNT + i] =
			atomic_exchange_explicit(&setups[i], 0, memory_order_relaxed);
	if (any == 0)
		return false;
	bool sent = exiting ? slim_router_note_now(SLIM_T_STATS, buf, sizeof buf)
			    : slim_router_note(SLIM_T_STATS, buf, sizeof buf, -1);
	if (!sent) {
		put_back(buf + 2);
		return false;
	}
	atomic_store_explicit(&sent_any, true, memory_order_relaxed);
	return true;
}

void slim_stats_fallback(int reason)
{
	if (reason < 0 || reason >= SLIM_FB_COUNT)
		reason = SLIM_FB_OTHER;
	atomic_fetch_add_explicit(&fallbacks[reason], 1, memory_order_relaxed);
	maybe_send(false);
}

void slim_stats_setup(int64_t started_us)
{
	int64_t us = slim_now_us() - started_us;
	int bucket = 0;
	while (bucket < SLIM_SETUP_BUCKETS - 1 && us >= ((int64_t)1 << bucket))
		bucket++;
	atomic_fetch_add_explicit(&setups[bucket], 1, memory_order_relaxed);
	maybe_send(false);
}

/*
 * What a process counted in its last second is sent as it exits; if it
 * sent any STATS, a HELLO round trip then makes sure the router has read
 * them before the process is gone (waiting STATS_EXIT_WAIT_MS at most).
 */
__attribute__((destructor)) static void flush_stats(void)
{
	if (slim_cfg.router_path[0] == '\0')
		return;
	maybe_send(true);
	if (atomic_load_explicit(&sent_any, memory_order_relaxed)) {
		int wait = slim_cfg.timeout_ms < STATS_EXIT_WAIT_MS ? slim_cfg.timeout_ms : STATS_EXIT_WAIT_MS;
		slim_router_sync(wait);
	}
}

/* A forked child starts counting from zero: what the parent counted is
 * the parent's to report. */
void slim_stats_atfork_child(void)
{
	for (int i = 0; i < SLIM_FB_COUNT; i++)
		atomic_store(&fallbacks[i], 0);
	for (int i = 0; i < SLIM_SETUP_BUCKETS; i++)
		atomic_store(&setups[i], 0);
	atomic_store(&last_sent_ms, 0);
	atomic_store(&sent_any, false);
}
