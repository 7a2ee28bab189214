#include "loadgen.h"

uint64_t sched_due(const struct schedule *s, uint64_t n)
{
	return s->start + (uint64_t)((double)n * 1e9 / s->rate);
}

/* The number of requests due in [start, until): the first n with
 * sched_due(n) >= until. Computed, then corrected for rounding. */
uint64_t sched_due_before(const struct schedule *s, uint64_t until)
{
	if (until <= s->start)
		return 0;
	uint64_t n = (uint64_t)((double)(until - s->start) * s->rate / 1e9);
	while (n > 0 && sched_due(s, n - 1) >= until)
		n--;
	while (sched_due(s, n) < until)
		n++;
	return n;
}

uint64_t sched_total(const struct schedule *s) { return sched_due_before(s, s->measure_until); }

uint64_t sched_due_by(const struct schedule *s, uint64_t now)
{
	uint64_t total = sched_total(s);
	uint64_t n = sched_due_before(s, now + 1);
	return n < total ? n : total;
}

bool sched_measured(const struct schedule *s, uint64_t due)
{
	return due >= s->measure_from && due < s->measure_until;
}
