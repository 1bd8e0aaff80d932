/*
 * block.h - dynamic blocks: sources refused at accept until a time, with
 * an escalation level that doubles the next block when an offender comes
 * back within block_memory.
 *
 * A bounded table (see srclimit.h for the scheme): it grows as blocks
 * come; at its bound, when a window is full, the entry whose block ends
 * first (expired ones before all) is replaced.
 * Blocks are also kept in the store and, with firewall = nftables, in the
 * kernel: this table is the copy the accept path reads.
 */
#ifndef MXG_BLOCK_H
#define MXG_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

#define BLOCK_WAYS 8

struct blocks;

/* One block as the store and the control socket see it. */
struct block_info {
	int64_t first;	/* first offence remembered */
	int64_t until;	/* end of the block */
	int64_t last;	/* last offence */
	uint32_t level; /* 1 for a first offence, doubling the time per level */
};

struct blocks *block_new(uint32_t size);

/*
 * block_until - the end of key's block, or 0 when key is not blocked at
 * now.
 */
int64_t block_until(const struct blocks *b, const struct ipkey *key, int64_t now);

/*
 * block_offend - key offended at now: block it for base seconds, doubled
 * for every earlier offence whose block ended less than memory seconds
 * ago, at most max seconds. Fills *out. Returns the block time in seconds.
 */
uint32_t block_offend(struct blocks *b, const struct ipkey *key, int64_t now, uint32_t base,
		      uint32_t max, uint32_t memory, struct block_info *out);

/*
 * block_set - take a block made elsewhere (the store at start, another MX,
 * the operator): the longer of it and what is known wins.
 */
void block_set(struct blocks *b, const struct ipkey *key, const struct block_info *in);

/*
 * block_get - key's entry, in force or ended but remembered (its level
 * still counts toward the next block), into *out. Returns 1, or 0 when
 * the table has none. Read-only: for mxguardctl explain.
 */
int block_get(const struct blocks *b, const struct ipkey *key, struct block_info *out);

/* block_del - lift key's block (its offence history goes too). 1 if it was there. */
int block_del(struct blocks *b, const struct ipkey *key);

/* block_active - blocks in force at now (a walk: for status, not per accept). */
size_t block_active(const struct blocks *b, int64_t now);

size_t block_memory(const struct blocks *b);

void block_free(struct blocks **bp);

#endif
