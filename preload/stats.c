/*
 * What the shim tells its router about itself (STATS, docs/protocol.md §1):
 * connects that fell back to the overlay, by reason, and a log2 histogram
 * of the time accelerated connects spent in connect(). Counters are
 * atomics; at most once a second, and only when something was counted, one
 * one-way message carries the deltas. Nothing here blocks or allocates.
 */
#include "shim.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define STATS_INTERVAL_MS 1000

static _Atomic uint32_t fallbacks[SLIM_FB_COUNT];
static _Atomic uint32_t setups[SLIM_SETUP_BUCKETS];
static _Atomic int64_t last_sent_ms;

int64_t slim_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sends the counts gathered so far if the last STATS is a second old. */
static void maybe_send(bool force)
{
	int64_t now = slim_now_ms();
	int64_t last = atomic_load_explicit(&last_sent_ms, memory_order_relaxed);
	if (!force && now - last < STATS_INTERVAL_MS)
		return;
	if (!atomic_compare_exchange_strong(&last_sent_ms, &last, now))
		return; /* another thread sends */
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
	if (any != 0)
		slim_router_note(SLIM_T_STATS, buf, sizeof buf, -1);
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

/* What a process counted in its last second is sent as it exits. */
__attribute__((destructor)) static void flush_stats(void)
{
	if (slim_cfg.router_path[0] != '\0')
		maybe_send(true);
}
