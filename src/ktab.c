/*
 * ktab.c - the flood detector's key table (see ktab.h for the contract).
 *
 * Split out of detect.c unchanged. The table starts small and doubles on
 * demand up to its bound, so memory follows the keys actually seen
 * (hashing spreads even a few keys over every page of a table, so a table
 * allocated at its bound would be resident almost at once). A new key
 * takes a free slot of its window, or the stalest if it has expired, or
 * else, below the bound, the table doubles; at the bound it evicts the
 * stalest entry of the window: a flood of fresh addresses recycles the
 * slots of sources not seen for the longest time, and a busy source, seen
 * recently, stays.
 */
#include <string.h>

#include "hugemem.h"
#include "ktab.h"

#ifndef KTAB_HOP
#define KTAB_HOP 64 /* slots past a full window searched for a free one */
#endif
#ifndef KTAB_FILL_NUM
#define KTAB_FILL_NUM 3 /* a lazy table doubles once 3/4 full */
#define KTAB_FILL_DEN 4
#endif

/*
 * key_eq - are two keys equal? Two 8-byte loads: a call to memcmp per
 * probe would cost more than the comparison.
 */
static inline int key_eq(const struct ipkey *a, const struct ipkey *b)
{
	uint64_t a0, a1, b0, b1;

	memcpy(&a0, a->b, 8);
	memcpy(&a1, a->b + 8, 8);
	memcpy(&b0, b->b, 8);
	memcpy(&b1, b->b + 8, 8);
	return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

/* ktab_tagof - the tag of hash h: its low 16 bits, never 0 (0 marks a free slot). */
static uint16_t ktab_tagof(uint64_t h)
{
	uint16_t tag = (uint16_t)h;

	return tag ? tag : 1;
}

/* ktab_alloc - an empty table of n slots (at least KTAB_PROBE) into t; -1: no memory. */
static int ktab_alloc(struct ktab *t, uint32_t n)
{
	t->n = n < KTAB_PROBE ? KTAB_PROBE : n;
	t->used = 0;
	t->tag = hugemem_calloc(t->n, sizeof(*t->tag));
	t->ent = hugemem_calloc(t->n, sizeof(*t->ent));
	if (t->tag == NULL || t->ent == NULL) {
		hugemem_free(t->tag, t->n, sizeof(*t->tag));
		hugemem_free(t->ent, t->n, sizeof(*t->ent));
		t->tag = NULL;
		t->ent = NULL;
		return -1;
	}
	return 0;
}

int ktab_init(struct ktab *t, uint32_t max, int lazy)
{
	t->max = max < KTAB_PROBE ? KTAB_PROBE : max;
	t->nogrow = 0;
	t->lazy = lazy;
	return ktab_alloc(t, t->max < KTAB_MIN ? t->max : KTAB_MIN);
}

/* ktab_free - see ktab.h. */
void ktab_free(struct ktab *t)
{
	hugemem_free(t->tag, t->n, sizeof(*t->tag));
	hugemem_free(t->ent, t->n, sizeof(*t->ent));
	t->tag = NULL;
	t->ent = NULL;
}

/* ktab_memory - see ktab.h. */
size_t ktab_memory(const struct ktab *t)
{
	return (size_t)t->n * (sizeof(*t->tag) + sizeof(*t->ent));
}

/* ktab_find - the slot of key, or -1. */
int64_t ktab_find(const struct ktab *t, const struct ipkey *key, uint64_t h)
{
	uint16_t tag = ktab_tagof(h);
	uint32_t i = ktab_home(t, h);

	for (int p = 0; p < KTAB_PROBE; p++) {
		if (t->tag[i] == tag && key_eq(&t->ent[i].key, key))
			return i;
		if (++i == t->n)
			i = 0;
	}
	return -1;
}

enum { KTAB_FOUND, KTAB_FREE, KTAB_STALE };

/*
 * ktab_probe - look key up in its window: KTAB_FOUND with its slot, else
 * KTAB_FREE with the first free slot, else KTAB_STALE with the stalest
 * slot of the window. Writes nothing.
 */
static int ktab_probe(const struct ktab *t, const struct ipkey *key, uint64_t h, uint32_t *slot)
{
	uint16_t tag = ktab_tagof(h);
	uint32_t i = ktab_home(t, h), free_slot = UINT32_MAX, stale = i;

	for (int p = 0; p < KTAB_PROBE; p++) {
		if (t->tag[i] == tag && key_eq(&t->ent[i].key, key)) {
			*slot = i;
			return KTAB_FOUND;
		}
		if (t->tag[i] == 0) {
			if (free_slot == UINT32_MAX)
				free_slot = i;
		} else if (t->ent[i].t < t->ent[stale].t || t->tag[stale] == 0) {
			stale = i;
		}
		if (++i == t->n)
			i = 0;
	}
	if (free_slot != UINT32_MAX) {
		*slot = free_slot;
		return KTAB_FREE;
	}
	*slot = stale;
	return KTAB_STALE;
}

/*
 * ktab_dist - how far slot b is after slot a, around the end of the table.
 */
static uint32_t ktab_dist(const struct ktab *t, uint32_t a, uint32_t b)
{
	return b >= a ? b - a : b + t->n - a;
}

/*
 * ktab_hop - make room in the full window of home (hopscotch): find a
 * free slot at most KTAB_HOP slots past the window, then move it back
 * into the window by moving entries forward into it, each within its own
 * window. The slot freed in the window into *slot; -1: no free slot near
 * enough, or no entry could move (t unchanged). Lookups stay a window of
 * KTAB_PROBE; only an insert into a full window pays this, a few hashes
 * and at most a few more cache lines, so the table fills further before
 * it doubles or loses an entry.
 */
static int ktab_hop(struct ktab *t, uint32_t home, uint32_t *slot)
{
	uint32_t f = home, d;

	if (t->n < 2 * KTAB_PROBE + KTAB_HOP)
		return -1; /* too small to be worth it: it doubles soon anyway */
	for (d = KTAB_PROBE; d < KTAB_PROBE + KTAB_HOP; d++) {
		f = home + d >= t->n ? home + d - t->n : home + d;
		if (t->tag[f] == 0)
			break;
	}
	if (d == KTAB_PROBE + KTAB_HOP)
		return -1;
	while (d >= KTAB_PROBE) {
		uint32_t k;

		/*
		 * The farthest entry before f whose window reaches f moves
		 * there: the slots between home and f are all taken, so f
		 * comes closest to the window with each move.
		 */
		for (k = KTAB_PROBE - 1; k > 0; k--) {
			uint32_t j = f >= k ? f - k : f + t->n - k;
			uint32_t hj = ktab_home(t, netaddr_key_hash(&t->ent[j].key));

			if (ktab_dist(t, hj, f) < KTAB_PROBE) {
				t->tag[f] = t->tag[j];
				t->ent[f] = t->ent[j];
				t->tag[j] = 0;
				f = j;
				d -= k;
				break;
			}
		}
		if (k == 0)
			return -1; /* the moves so far kept every entry in its window */
	}
	*slot = f;
	return 0;
}

/*
 * ktab_rehash - move every entry into a table of n slots; -1: no memory,
 * -2: strict and some entry found no free slot; t is unchanged on error.
 * Not strict (shrinking, or growing to the bound), the stalest of a
 * crowded window give way.
 */
static int ktab_rehash(struct ktab *t, uint32_t n, int strict)
{
	struct ktab nt;
	uint32_t j;

	if (ktab_alloc(&nt, n) < 0)
		return -1;
	nt.max = t->max;
	nt.nogrow = t->nogrow;
	nt.lazy = t->lazy;
	for (uint32_t i = 0; i < t->n; i++) {
		if (t->tag[i] == 0)
			continue;
		const struct kent *e = &t->ent[i];
		uint64_t h = netaddr_key_hash(&e->key);

		switch (ktab_probe(&nt, &e->key, h, &j)) {
		case KTAB_FREE:
			nt.used++;
			break;
		case KTAB_STALE:
			if (ktab_hop(&nt, ktab_home(&nt, h), &j) == 0) {
				nt.used++;
				break;
			}
			if (strict) {
				ktab_free(&nt);
				return -2;
			}
			if (nt.ent[j].t >= e->t)
				continue; /* the resident is fresher: e gives way */
			break;
		default:
			continue; /* no duplicates in t */
		}
		nt.tag[j] = ktab_tagof(h);
		nt.ent[j] = *e;
	}
	ktab_free(t);
	*t = nt;
	return 0;
}

/*
 * ktab_grow - double t (up to its bound) so that more keys fit; -1: no
 * memory or at the bound. A doubled table holding every entry without
 * eviction is the rule (its load halves); should a window still overflow,
 * double again rather than lose an entry, except at the bound.
 */
static int ktab_grow(struct ktab *t)
{
	uint64_t n = t->n;

	while (n < t->max) {
		n = 2 * n > t->max ? t->max : 2 * n;
		int r = ktab_rehash(t, (uint32_t)n, n < t->max);

		if (r == 0)
			return 0;
		if (r == -1)
			return -1;
	}
	return -1;
}

/*
 * ktab_get - the slot of key; when absent, a slot taken for it with
 * *isnew set: a free one of its window; else the stalest of the window if
 * its last time is before expired (its entry means nothing any more);
 * else, below the bound, a free one after the table doubled; else the
 * stalest of the window, whose entry is lost. Never fails: the window is
 * never empty. Growing costs a rehash of the table, amortised over the
 * inserts that filled it.
 */
uint32_t ktab_get(struct ktab *t, const struct ipkey *key, uint64_t h, uint64_t expired, int *isnew)
{
	uint32_t i;
	int r = ktab_probe(t, key, h, &i);

	if (r == KTAB_FOUND) {
		*isnew = 0;
		return i;
	}
	/*
	 * A full window of live entries, below the bound. Up to a load of
	 * KTAB_FILL_NUM/KTAB_FILL_DEN, entries move aside to free a slot in
	 * it (nothing lost; doubling at the first full window would hold
	 * three or four slots per key); should that fail, a table that must
	 * not lose an entry (the good marks) doubles, while in a lazy one
	 * (the per-source rates) the window's stalest entry gives way (its
	 * count restarts; it was the least recently seen there). Past that
	 * load, the table doubles. At the bound, the stalest gives way at
	 * once, as before: under a flood of fresh addresses every insert
	 * would pay a failing search.
	 */
	if (r == KTAB_STALE && t->ent[i].t >= expired && t->n < t->max && !t->nogrow) {
		int full = (uint64_t)t->used * KTAB_FILL_DEN >= (uint64_t)t->n * KTAB_FILL_NUM;

		if (!full && ktab_hop(t, ktab_home(t, h), &i) == 0) {
			r = KTAB_FREE;
		} else if (full || !t->lazy || (uint64_t)t->used * 2 >= t->n) {
			if (ktab_grow(t) < 0) {
				t->nogrow = 1; /* no memory: do not retry per insert */
			} else {
				r = ktab_probe(t, key, h, &i);
				/* The window may still be full (rarely): move aside. */
				if (r == KTAB_STALE && ktab_hop(t, ktab_home(t, h), &i) == 0)
					r = KTAB_FREE;
			}
		}
	}
	if (r == KTAB_FREE)
		t->used++;
	t->tag[i] = ktab_tagof(h);
	t->ent[i].key = *key;
	t->ent[i].t = 0;
	t->ent[i].u = 0;
	*isnew = 1;
	return i;
}

/*
 * ktab_setmax - a new bound of max slots: a larger one is reached on
 * demand, a table above a smaller one shrinks now. -1: no memory to
 * shrink, t and its bound unchanged.
 */
int ktab_setmax(struct ktab *t, uint32_t max)
{
	uint32_t oldmax = t->max;

	t->max = max < KTAB_PROBE ? KTAB_PROBE : max;
	t->nogrow = 0;
	if (t->n > t->max && ktab_rehash(t, t->max, 0) < 0) {
		t->max = oldmax;
		return -1;
	}
	return 0;
}
void ktab_remove(struct ktab *t, uint32_t i)
{
	if (i < t->n && t->tag[i] != 0) {
		t->tag[i] = 0;
		t->used--;
	}
}
