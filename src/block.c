/*
 * block.c - the table of dynamic blocks (see block.h).
 *
 * An entry outlives its block by block_memory so that a repeat offence is
 * recognised; the entry itself is only dropped when its slot is needed.
 */
#include <stdlib.h>
#include <string.h>

#include "block.h"

struct block_slot {
	struct ipkey key;
	struct block_info bi; /* level 0: free slot */
};

struct blocks {
	struct block_slot *slot;
	uint32_t mask; /* slots - 1 (power of two) */
	uint32_t max;  /* the most slots it may grow to */
};

/* The first size: the table grows with the blocks, not before. */
#define BLOCK_FIRST 256

struct blocks *block_new(uint32_t size)
{
	struct blocks *b = calloc(1, sizeof(*b));
	uint32_t n = BLOCK_WAYS, first;

	if (b == NULL)
		return NULL;
	while (n < size && n < (1u << 28))
		n <<= 1;
	b->max = n;
	first = n < BLOCK_FIRST ? n : BLOCK_FIRST;
	b->mask = first - 1;
	b->slot = calloc((size_t)first + BLOCK_WAYS - 1, sizeof(*b->slot));
	if (b->slot == NULL) {
		free(b);
		return NULL;
	}
	return b;
}

static struct block_slot *block_window(const struct blocks *b, const struct ipkey *key)
{
	return &b->slot[netaddr_key_hash(key) & b->mask];
}

static struct block_slot *block_find(const struct blocks *b, const struct ipkey *key)
{
	struct block_slot *w = block_window(b, key);

	for (int i = 0; i < BLOCK_WAYS; i++)
		if (w[i].bi.level != 0 && memcmp(&w[i].key, key, sizeof(*key)) == 0)
			return &w[i];
	return NULL;
}

/*
 * block_grow - double the table (up to max slots). Returns 0, or -1 when
 * it cannot (at max, out of memory): then the table is unchanged.
 */
static int block_grow(struct blocks *b)
{
	uint32_t n = b->mask + 1;

	while (n < b->max) {
		struct block_slot *bigger;
		uint32_t mask = n * 2 - 1;
		size_t i, old = (size_t)b->mask + BLOCK_WAYS;

		n *= 2;
		bigger = calloc((size_t)n + BLOCK_WAYS - 1, sizeof(*bigger));
		if (bigger == NULL)
			return -1;
		for (i = 0; i < old; i++) {
			struct block_slot *w;
			int j;

			if (b->slot[i].bi.level == 0)
				continue;
			w = &bigger[netaddr_key_hash(&b->slot[i].key) & mask];
			for (j = 0; j < BLOCK_WAYS && w[j].bi.level != 0; j++)
				;
			if (j == BLOCK_WAYS)
				break; /* a crowded window even at this size: try the next */
			w[j] = b->slot[i];
		}
		if (i < old) {
			free(bigger);
			continue;
		}
		free(b->slot);
		b->slot = bigger;
		b->mask = mask;
		return 0;
	}
	return -1;
}

/* block_take - key's slot; a new one replaces the block that ends first. */
static struct block_slot *block_take(struct blocks *b, const struct ipkey *key)
{
	struct block_slot *w = block_window(b, key), *victim = &w[0];

	for (int i = 0; i < BLOCK_WAYS; i++) {
		if (w[i].bi.level != 0 && memcmp(&w[i].key, key, sizeof(*key)) == 0)
			return &w[i];
		if (victim->bi.level != 0 &&
		    (w[i].bi.level == 0 || w[i].bi.until < victim->bi.until))
			victim = &w[i];
	}
	/* A full window: grow while below the bound rather than lift a block. */
	if (victim->bi.level != 0 && block_grow(b) == 0)
		return block_take(b, key);
	memset(victim, 0, sizeof(*victim));
	victim->key = *key;
	return victim;
}

int64_t block_until(const struct blocks *b, const struct ipkey *key, int64_t now)
{
	const struct block_slot *s = block_find(b, key);

	return s != NULL && s->bi.until > now ? s->bi.until : 0;
}

int block_get(const struct blocks *b, const struct ipkey *key, struct block_info *out)
{
	const struct block_slot *s = block_find(b, key);

	if (s == NULL)
		return 0;
	*out = s->bi;
	return 1;
}

uint32_t block_offend(struct blocks *b, const struct ipkey *key, int64_t now, uint32_t base,
		      uint32_t max, uint32_t memory, struct block_info *out)
{
	struct block_slot *s = block_take(b, key);
	uint64_t secs = base;
	uint32_t level = 1;

	if (s->bi.level != 0 && s->bi.until + (int64_t)memory >= now)
		level = s->bi.level + 1;
	else
		s->bi.first = now;
	/* level 1: base; each repeat doubles, up to max (no overflow at level 64). */
	for (uint32_t i = 1; i < level && secs < max; i++)
		secs *= 2;
	if (secs > max)
		secs = max;
	if (secs < 1)
		secs = 1;
	s->bi.level = level;
	s->bi.last = now;
	s->bi.until = now + (int64_t)secs;
	*out = s->bi;
	return (uint32_t)secs;
}

void block_set(struct blocks *b, const struct ipkey *key, const struct block_info *in)
{
	struct block_slot *s = block_find(b, key);

	if (in->level == 0)
		return;
	if (s == NULL) {
		s = block_take(b, key);
		s->bi = *in;
		return;
	}
	if (in->until > s->bi.until)
		s->bi.until = in->until;
	if (in->level > s->bi.level)
		s->bi.level = in->level;
	if (in->last > s->bi.last)
		s->bi.last = in->last;
	if (in->first != 0 && (s->bi.first == 0 || in->first < s->bi.first))
		s->bi.first = in->first;
}

int block_del(struct blocks *b, const struct ipkey *key)
{
	struct block_slot *s = block_find(b, key);

	if (s == NULL)
		return 0;
	memset(s, 0, sizeof(*s));
	return 1;
}

size_t block_active(const struct blocks *b, int64_t now)
{
	size_t n = 0;

	for (size_t i = 0; i < (size_t)b->mask + BLOCK_WAYS; i++)
		if (b->slot[i].bi.level != 0 && b->slot[i].bi.until > now)
			n++;
	return n;
}

size_t block_memory(const struct blocks *b)
{
	return sizeof(*b) + ((size_t)b->mask + BLOCK_WAYS) * sizeof(struct block_slot);
}

void block_free(struct blocks **bp)
{
	if (*bp == NULL)
		return;
	free((*bp)->slot);
	free(*bp);
	*bp = NULL;
}
