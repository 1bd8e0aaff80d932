/*
 * topk.c - space-saving heavy hitters (see topk.h for the contract).
 *
 * During a flood every attempt feeds two of these, and most attempts are
 * keys not held, which cost a lookup that misses and an eviction. Both
 * are kept off a linear scan: a byte of each hash sits in a word array,
 * so eight keys are ruled out at once (a hash and key are compared only
 * where the byte matches), and the counters at the smallest count are a
 * bit mask, so the one to evict is its lowest bit. Counts only grow by
 * one, so the mask only loses bits; when the last goes, one scan finds
 * the new smallest count (after about as many evictions as counters).
 */
#include <string.h>

#include "topk.h"

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static uint8_t topk_fp(uint64_t h)
{
	return (uint8_t)(h >> 40);
}

static int topk_key_eq(const struct ipkey *a, const struct ipkey *b)
{
	return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

static void topk_set_fp(struct topk *t, int i, uint8_t fp)
{
	int sh = (i % 8) * 8;

	t->fp[i / 8] = (t->fp[i / 8] & ~(UINT64_C(0xff) << sh)) | (uint64_t)fp << sh;
}

/* topk_find - the counter holding key, or -1. */
static int topk_find(const struct topk *t, const struct ipkey *key, uint64_t h)
{
	uint64_t pat = ONES * topk_fp(h);

	for (int w = 0; w * 8 < t->n; w++) {
		uint64_t x = t->fp[w] ^ pat;
		/* A high bit for each zero byte of x (and a few false ones above it). */
		uint64_t m = (x - ONES) & ~x & HIGHS;

		while (m != 0) {
			int i = w * 8 + __builtin_ctzll(m) / 8;

			if (i < t->n && t->h[i] == h && topk_key_eq(&t->key[i], key))
				return i;
			m &= m - 1;
		}
	}
	return -1;
}

/* topk_rescan - the smallest count and its counters, from scratch. */
static void topk_rescan(struct topk *t)
{
	t->atmin = 0;
	for (int i = 0; i < t->n; i++) {
		if (t->atmin == 0 || t->count[i] < t->minv) {
			t->minv = t->count[i];
			t->atmin = 0;
		}
		if (t->count[i] == t->minv)
			t->atmin |= UINT64_C(1) << i;
	}
}

/* topk_bump - counter i counts one more. */
static void topk_bump(struct topk *t, int i)
{
	t->count[i]++;
	if (t->atmin & (UINT64_C(1) << i)) {
		t->atmin &= ~(UINT64_C(1) << i);
		if (t->atmin == 0)
			topk_rescan(t);
	}
}

void topk_reset(struct topk *t)
{
	t->n = 0;
	t->atmin = 0;
	t->minv = 0;
}

void topk_add(struct topk *t, const struct ipkey *key, uint64_t h)
{
	int i = topk_find(t, key, h);

	if (i >= 0) {
		topk_bump(t, i);
		return;
	}
	if (t->n < TOPK_K) {
		i = t->n++;
		t->count[i] = 0;
		/* The new counter is the smallest (0, the others are 1 or more) until bumped. */
		t->minv = 0;
		t->atmin = UINT64_C(1) << i;
	} else {
		i = __builtin_ctzll(t->atmin);
	}
	/* Space-saving: the newcomer inherits the smallest count (its error bound). */
	t->err[i] = t->count[i];
	t->h[i] = h;
	t->key[i] = *key;
	topk_set_fp(t, i, topk_fp(h));
	topk_bump(t, i);
}

int topk_top(const struct topk *t, struct topk_item *out, int max)
{
	int n = 0;
	uint8_t taken[TOPK_K] = {0};

	while (n < max) {
		int best = -1;

		for (int i = 0; i < t->n; i++)
			if (!taken[i] &&
			    (best < 0 || t->count[i] - t->err[i] > t->count[best] - t->err[best]))
				best = i;
		if (best < 0)
			break;
		taken[best] = 1;
		out[n].key = t->key[best];
		out[n].count = t->count[best] - t->err[best];
		n++;
	}
	return n;
}
