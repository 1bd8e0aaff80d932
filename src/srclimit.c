/*
 * srclimit.c - bounded per-key connection counters (see srclimit.h).
 *
 * Slots are 32 bytes; a window of SRCLIMIT_WAYS slots is two cache lines.
 * Every key has two windows, aligned groups of SRCLIMIT_WAYS slots chosen
 * by two halves of its hash, and lives in either: a new key goes to the
 * emptier of the two, which keeps a table fillable to about four fifths
 * of its size before some key finds both full and the table doubles
 * (a single window overflows at a fifth; windows starting at any slot,
 * overlapping their neighbours, with first-fit, at a half or less: the
 * tables of a few thousand held sources were three times their size).
 */
#include <stdlib.h>
#include <string.h>

#include "srclimit.h"

struct srclimit_slot {
	struct ipkey key;
	uint32_t conns;	 /* open connections */
	uint32_t minute; /* minute of cur, plus one; 0: free slot */
	uint32_t cur;	 /* attempts in that minute */
	uint32_t prev;	 /* attempts in the minute before */
};

struct srclimit {
	struct srclimit_slot *slot;
	uint32_t mask; /* slots - 1 (power of two) */
	uint32_t max;  /* the most slots it may grow to */
	uint64_t untracked;
};

/* The first size: a table grows with the sources it sees, not before. */
#define SRCLIMIT_FIRST 1024

struct srclimit *srclimit_new(uint32_t size)
{
	struct srclimit *l = calloc(1, sizeof(*l));
	uint32_t n = SRCLIMIT_WAYS, first;

	if (l == NULL)
		return NULL;
	while (n < size && n < (1u << 30))
		n <<= 1;
	l->max = n;
	first = n < SRCLIMIT_FIRST ? n : SRCLIMIT_FIRST;
	l->mask = first - 1;
	l->slot = calloc(first, sizeof(*l->slot));
	if (l->slot == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

/*
 * srclimit_windows - the two windows of a key with hash h in a table of
 * mask + 1 slots (a power of two, at least SRCLIMIT_WAYS).
 */
static void srclimit_windows(struct srclimit_slot *slot, uint32_t mask, uint64_t h,
			     struct srclimit_slot *w[2])
{
	w[0] = &slot[h & mask & ~(uint64_t)(SRCLIMIT_WAYS - 1)];
	w[1] = &slot[(h >> 32) & mask & ~(uint64_t)(SRCLIMIT_WAYS - 1)];
}

static struct srclimit_slot *srclimit_find(const struct srclimit *l, const struct ipkey *key)
{
	struct srclimit_slot *w[2];

	srclimit_windows(l->slot, l->mask, netaddr_key_hash(key), w);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < SRCLIMIT_WAYS; i++)
			if (w[k][i].minute != 0 && memcmp(&w[k][i].key, key, sizeof(*key)) == 0)
				return &w[k][i];
	return NULL;
}

/*
 * srclimit_place - a free slot for a new key with windows w, or NULL when
 * both are full: the first free slot of the window with more free slots
 * (the first window on a tie). Taking the emptier window, not the first
 * with room, is what lets a table fill most of its slots before some key
 * finds both windows full and makes it double (or, at the bound, turns the
 * key away): first-fit crowded the first windows and doubled the table
 * at about half full.
 */
static struct srclimit_slot *srclimit_place(struct srclimit_slot *w[2])
{
	struct srclimit_slot *first[2] = {NULL, NULL};
	int nfree[2] = {0, 0};

	for (int k = 0; k < 2; k++)
		for (int i = 0; i < SRCLIMIT_WAYS; i++)
			if (w[k][i].minute == 0 && nfree[k]++ == 0)
				first[k] = &w[k][i];
	return nfree[1] > nfree[0] ? first[1] : first[0];
}

/*
 * srclimit_grow - double the table (up to max slots), every entry moved to
 * a free slot of one of its windows in the new one. Returns 0, or -1 when
 * it cannot grow (at max, or out of memory: then the table is unchanged).
 */
static int srclimit_grow(struct srclimit *l)
{
	uint32_t n = l->mask + 1;

	while (n < l->max) {
		struct srclimit_slot *bigger;
		uint32_t mask = n * 2 - 1;
		size_t i, old = (size_t)l->mask + 1;

		n *= 2;
		bigger = calloc(n, sizeof(*bigger));
		if (bigger == NULL)
			return -1;
		for (i = 0; i < old; i++) {
			struct srclimit_slot *w[2], *to;

			if (l->slot[i].minute == 0)
				continue;
			srclimit_windows(bigger, mask, netaddr_key_hash(&l->slot[i].key), w);
			if ((to = srclimit_place(w)) == NULL)
				break; /* crowded windows even at this size: try the next */
			*to = l->slot[i];
		}
		if (i < old) {
			free(bigger);
			continue;
		}
		free(l->slot);
		l->slot = bigger;
		l->mask = mask;
		return 0;
	}
	return -1;
}

/*
 * srclimit_take - key's slot, made if needed; NULL when both its windows
 * are busy with open connections at the bound.
 */
static struct srclimit_slot *srclimit_take(struct srclimit *l, const struct ipkey *key,
					   uint32_t minute)
{
	struct srclimit_slot *w[2], *victim = NULL, *s;
	int k, i;

	if ((s = srclimit_find(l, key)) != NULL)
		return s;
	srclimit_windows(l->slot, l->mask, netaddr_key_hash(key), w);
	if ((victim = srclimit_place(w)) == NULL) {
		/* Both full: grow while below the bound rather than forget someone. */
		if (srclimit_grow(l) == 0)
			return srclimit_take(l, key, minute);
		/* At the bound: the key least recently seen with no open connection goes. */
		for (k = 0; k < 2; k++)
			for (i = 0; i < SRCLIMIT_WAYS; i++)
				if (w[k][i].conns == 0 &&
				    (victim == NULL || w[k][i].minute < victim->minute))
					victim = &w[k][i];
		if (victim == NULL) {
			l->untracked++;
			return NULL;
		}
	}
	memset(victim, 0, sizeof(*victim));
	victim->key = *key;
	victim->minute = minute;
	return victim;
}

static void srclimit_roll(struct srclimit_slot *s, uint32_t minute)
{
	if (s->minute == minute)
		return;
	s->prev = s->minute + 1 == minute ? s->cur : 0;
	s->cur = 0;
	s->minute = minute;
}

uint32_t srclimit_attempt(struct srclimit *l, const struct ipkey *key, uint32_t now)
{
	uint32_t minute = now / 60 + 1;
	struct srclimit_slot *s = srclimit_take(l, key, minute);

	if (s == NULL)
		return 0;
	srclimit_roll(s, minute);
	s->cur++;
	/* The part of the previous minute still inside the last 60 seconds. */
	return s->cur + (uint32_t)((uint64_t)s->prev * (60 - now % 60) / 60);
}

uint32_t srclimit_rate(const struct srclimit *l, const struct ipkey *key, uint32_t now)
{
	const struct srclimit_slot *s = srclimit_find(l, key);
	uint32_t minute = now / 60 + 1, cur, prev;

	if (s == NULL)
		return 0;
	/* srclimit_roll's arithmetic, on copies: the slot is not touched. */
	cur = s->minute == minute ? s->cur : 0;
	prev = s->minute == minute ? s->prev : s->minute + 1 == minute ? s->cur : 0;
	return cur + (uint32_t)((uint64_t)prev * (60 - now % 60) / 60);
}

uint32_t srclimit_conns(const struct srclimit *l, const struct ipkey *key)
{
	const struct srclimit_slot *s = srclimit_find(l, key);

	return s ? s->conns : 0;
}

int srclimit_open(struct srclimit *l, const struct ipkey *key, uint32_t now)
{
	struct srclimit_slot *s = srclimit_take(l, key, now / 60 + 1);

	if (s == NULL)
		return -1;
	s->conns++;
	return 0;
}

void srclimit_close(struct srclimit *l, const struct ipkey *key)
{
	struct srclimit_slot *s = srclimit_find(l, key);

	/* A slot with open connections is never reused: it is still there. */
	if (s != NULL && s->conns > 0)
		s->conns--;
}

uint64_t srclimit_untracked(const struct srclimit *l)
{
	return l->untracked;
}

size_t srclimit_memory(const struct srclimit *l)
{
	return sizeof(*l) + ((size_t)l->mask + 1) * sizeof(struct srclimit_slot);
}

void srclimit_free(struct srclimit **lp)
{
	if (*lp == NULL)
		return;
	free((*lp)->slot);
	free(*lp);
	*lp = NULL;
}
