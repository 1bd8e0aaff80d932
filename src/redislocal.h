/*
 * redislocal.h - the Redis store's local side (see store_redis.h): what it
 * decides from while Redis is away or slow, and what it keeps for Redis
 * until it is back. Every function works on the store's own state and
 * never talks to Redis.
 */
#ifndef MXG_REDISLOCAL_H
#define MXG_REDISLOCAL_H

#include "store_redis.h"

/*
 * The cache: records read from Redis, at most r->cache_max (none when
 * r->buckets is NULL), the oldest forgotten first.
 * redislocal_cache_find returns the link that points to kind/key's entry,
 * or NULL; redislocal_cache_put adds or replaces it (silently not on a
 * failed allocation); redislocal_cache_del forgets it if present.
 */
struct centry **redislocal_cache_find(struct rstore *r, enum store_kind kind, const char *key);
void redislocal_cache_put(struct rstore *r, enum store_kind kind, const char *key,
			  const struct store_rec *rec);
void redislocal_cache_del(struct rstore *r, enum store_kind kind, const char *key);

/*
 * redislocal_lookup - the answer without Redis: the LMDB file (our own
 * writes) and the cache (what Redis told us); the more recently updated
 * wins. 1 and rec, 0 for none, -1 on an LMDB error.
 */
int redislocal_lookup(struct rstore *r, enum store_kind kind, const char *key,
		      struct store_rec *rec);

/*
 * redislocal_write_new - a write of kind/key (the caller owns it: it goes
 * to Redis, to the queue, or is freed); NULL when out of memory.
 * redislocal_enqueue - keep w (taken) for the replay; when the queue is
 * full the oldest goes, and is counted in r->dropped.
 */
struct rwrite *redislocal_write_new(struct rstore *r, enum store_kind kind, const char *key);
void redislocal_enqueue(struct rstore *r, struct rwrite *w);

/* redislocal_free - free the queued writes and the cache (store close). */
void redislocal_free(struct rstore *r);

#endif
