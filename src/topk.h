/*
 * topk.h - space-saving heavy hitters: the keys seen most often in a
 * stream, in constant memory (TOPK_K counters).
 *
 * Metwally, Agrawal, El Abbadi, "Efficient computation of frequent and
 * top-k elements in data streams" (2005): a key not held takes the place
 * of the one with the smallest count and inherits that count as its error
 * bound, so count - err is what a key is certain to have. The flood
 * detector keeps two per attack (sources and prefixes); the caller passes
 * each key's 64-bit hash, which it has already.
 */
#ifndef MXG_TOPK_H
#define MXG_TOPK_H

#include <stdint.h>

#include "netaddr.h"

#define TOPK_K 40 /* counters: 4 x a top 10 (at most 64) */

struct topk {
	int n;
	uint64_t atmin;		       /* bit i: count[i] is the smallest of the n */
	uint64_t minv;		       /* that smallest count */
	uint64_t fp[(TOPK_K + 7) / 8]; /* a byte of each hash, eight to a word */
	uint64_t h[TOPK_K], count[TOPK_K];
	uint64_t err[TOPK_K]; /* what a newcomer inherited: count - err is certain */
	struct ipkey key[TOPK_K];
};

struct topk_item {
	struct ipkey key;
	uint64_t count; /* count - err: certain */
};

/* topk_reset - empty t. */
void topk_reset(struct topk *t);

/*
 * topk_add - one occurrence of key (h: its hash). A key held counts one
 * more; a new one takes a free counter, else the one with the smallest
 * count (the first of them, by position) with that count plus one.
 */
void topk_add(struct topk *t, const struct ipkey *key, uint64_t h);

/*
 * topk_top - the at most max heaviest by their certain count (count - err),
 * most first (ties: the earlier counter first), into out; returns how many.
 */
int topk_top(const struct topk *t, struct topk_item *out, int max);

#endif
