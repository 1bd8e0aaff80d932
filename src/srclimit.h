/*
 * srclimit.h - per-source and per-prefix connection counts and rates for
 * the shield's limits (conn_per_source, rate_per_source, and the same per
 * /24 or /64 prefix).
 *
 * A bounded table: each key hashes to two windows of SRCLIMIT_WAYS slots
 * and lives in one of them. A new key takes a free slot of the emptier
 * window; when both are full the table doubles, up to its bound (so it
 * fills to about four fifths first); at the bound it takes the slot of a
 * key with no open connection that was seen least recently, and when
 * every slot of its window holds open connections the key goes untracked
 * (the limit does not apply to it, which is counted). Memory follows the
 * sources seen and never passes the bound, whatever an attacker shows.
 */
#ifndef MXG_SRCLIMIT_H
#define MXG_SRCLIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

#define SRCLIMIT_WAYS 8

struct srclimit;

/*
 * srclimit_new - a table bounded at about size entries (rounded up to a
 * power of two); it starts at 1,024 and grows as keys come.
 */
struct srclimit *srclimit_new(uint32_t size);

/*
 * srclimit_attempt - one connection attempt from key at now (seconds).
 * Returns the attempts in the last minute, this one included (a sliding
 * estimate over two one-minute buckets), or 0 when the key is untracked.
 */
uint32_t srclimit_attempt(struct srclimit *l, const struct ipkey *key, uint32_t now);

/*
 * srclimit_rate - the attempts of key in the last minute at now, as
 * srclimit_attempt estimates them, without counting one (0 when unknown).
 * Read-only: for mxguardctl explain.
 */
uint32_t srclimit_rate(const struct srclimit *l, const struct ipkey *key, uint32_t now);

/* srclimit_conns - open connections of key (0 when unknown). */
uint32_t srclimit_conns(const struct srclimit *l, const struct ipkey *key);

/*
 * srclimit_open / srclimit_close - a connection of key was admitted / ended.
 * srclimit_open returns 0, or -1 when the key is untracked (then the caller
 * must not call srclimit_close for it).
 */
int srclimit_open(struct srclimit *l, const struct ipkey *key, uint32_t now);
void srclimit_close(struct srclimit *l, const struct ipkey *key);

/* srclimit_untracked - keys that found no slot so far. */
uint64_t srclimit_untracked(const struct srclimit *l);

size_t srclimit_memory(const struct srclimit *l);

void srclimit_free(struct srclimit **lp);

#endif
