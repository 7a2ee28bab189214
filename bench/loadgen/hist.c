#include "loadgen.h"

size_t hist_index(uint64_t value)
{
	if (value < HIST_EXACT)
		return (size_t)value;
	unsigned msb = 63u - (unsigned)__builtin_clzll(value);
	if (msb > HIST_MAX_BIT)
		return HIST_BUCKETS - 1;
	unsigned shift = msb - (HIST_SUB_BITS - 1);
	uint64_t top = value >> shift; /* HIST_HALF .. HIST_EXACT-1 */
	return HIST_EXACT + (size_t)(msb - HIST_SUB_BITS) * HIST_HALF + (size_t)(top - HIST_HALF);
}

/* The midpoint of the bucket's range. */
uint64_t hist_value(size_t index)
{
	if (index < HIST_EXACT)
		return index;
	size_t above = index - HIST_EXACT;
	unsigned msb = HIST_SUB_BITS + (unsigned)(above / HIST_HALF);
	uint64_t top = HIST_HALF + above % HIST_HALF;
	unsigned shift = msb - (HIST_SUB_BITS - 1);
	return (top << shift) + ((uint64_t)1 << shift) / 2;
}

void hist_add(struct hist *h, uint64_t value)
{
	h->bucket[hist_index(value)]++;
	h->count++;
	h->sum += (double)value;
	if (value > h->max)
		h->max = value;
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
	if (h->count == 0)
		return 0;
	double exact = pct / 100.0 * (double)h->count;
	uint64_t rank = (uint64_t)exact;
	if ((double)rank < exact)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t v = hist_value(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}
