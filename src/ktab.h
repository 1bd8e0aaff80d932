/*
 * ktab.h - a bounded open-addressing table of IP keys with two 64-bit
 * values per key: the flood detector's per-source rates and its
 * known-good marks (detect.c).
 *
 * A key may sit in any of KTAB_PROBE slots after its home slot, so a
 * lookup reads a 16-bit tag per slot of that window (one cache line) and
 * compares keys only on a tag match; removal just clears the tag. The
 * table starts at KTAB_MIN slots and doubles on demand up to its bound;
 * at the bound a new key evicts the stalest entry of its window. The
 * values are the caller's: the table only reads t (the entry's last time)
 * to choose whom to evict.
 *
 * Pure data structure: no I/O, no clock (times are passed in). Memory is
 * bounded by max, whatever the input.
 */
#ifndef MXG_KTAB_H
#define MXG_KTAB_H

#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

#define KTAB_PROBE 16 /* slots a key may occupy after its home slot */
#define KTAB_MIN 1024 /* slots of a table at first */

/* One slot (32 bytes). */
struct kent {
	struct ipkey key;
	uint64_t t; /* last time: the stalest of a window gives way */
	uint64_t u; /* the caller's */
};

/*
 * Open-addressing table of n slots with a tag array; tag 0: free. The
 * fields are read by the caller (a walk over tag/ent, an entry's values),
 * changed only through the functions below.
 */
struct ktab {
	uint32_t n, used;
	uint32_t max; /* the bound, in slots */
	int nogrow;   /* growing failed (no memory): evict until reconfigured */
	int lazy;     /* grow only once well filled (counts may be lost below) */
	uint16_t *tag;
	struct kent *ent;
};

/* ktab_home - the home slot of hash h, from the high bits (the tag uses the low). */
static inline uint32_t ktab_home(const struct ktab *t, uint64_t h)
{
	return (uint32_t)(((h >> 32) * (uint64_t)t->n) >> 32);
}

/*
 * ktab_prefetch - start loading the probe window of h (its tags and the
 * entries they point to) without waiting: the caller has other misses to
 * wait for meanwhile, and the next lookup of h finds the lines in cache.
 * Always inlined, as the other prefetch helpers: GCC takes a function
 * that only prefetches for one without effect and drops the call.
 */
static inline __attribute__((always_inline)) void ktab_prefetch(const struct ktab *t, uint64_t h)
{
	uint32_t i = ktab_home(t, h);
	const char *e = (const char *)&t->ent[i];

	__builtin_prefetch(&t->tag[i]);
	/* The window past the end wraps: the few slots there are not fetched. */
	for (uint32_t k = 0; k < KTAB_PROBE * sizeof(*t->ent) && i + k / sizeof(*t->ent) < t->n;
	     k += 64)
		__builtin_prefetch(e + k);
}

/*
 * ktab_init - an empty table into t bounded by max slots (at least
 * KTAB_PROBE), small at first. lazy: it grows only once well filled, and
 * below that a crowded window's stalest entry gives way (for values that
 * may be lost, as rates); not lazy, it grows at the first crowded window
 * (for values that must stay, as good marks). 0, or -1: no memory, t
 * holds nothing to free.
 */
int ktab_init(struct ktab *t, uint32_t max, int lazy);

/* ktab_free - release t's arrays; t may be freed twice. */
void ktab_free(struct ktab *t);

/* ktab_memory - bytes t's arrays take. */
size_t ktab_memory(const struct ktab *t);

/* ktab_find - the slot of key (h = netaddr_key_hash(key)), or -1. */
int64_t ktab_find(const struct ktab *t, const struct ipkey *key, uint64_t h);

/*
 * ktab_get - the slot of key (h = netaddr_key_hash(key)); when absent, a
 * slot taken for it, its t and u zero, with *isnew set: a free one of its
 * window; else the stalest of the window if its t is before expired (its
 * entry means nothing any more); else, below the bound (and, lazy, once
 * well filled), a free one after the table doubled; else the stalest of
 * the window, whose entry is lost. Never fails. The slot is valid until
 * the next ktab_get or ktab_setmax.
 */
uint32_t ktab_get(struct ktab *t, const struct ipkey *key, uint64_t h, uint64_t expired,
		  int *isnew);

/* ktab_remove - free slot i (from ktab_get or ktab_find, still valid). */
void ktab_remove(struct ktab *t, uint32_t i);

/*
 * ktab_setmax - a new bound of max slots: a larger one is reached on
 * demand, a table above a smaller one shrinks now (the stalest of crowded
 * windows give way). 0, or -1: no memory to shrink, t and its bound
 * unchanged.
 */
int ktab_setmax(struct ktab *t, uint32_t max);

#endif
