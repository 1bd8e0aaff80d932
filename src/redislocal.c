/*
 * redislocal.c - the Redis store's local side (redislocal.h): a bounded
 * FIFO cache of the records Redis gave us, which with the LMDB file (it
 * receives every write too) answers lookups during an outage or after
 * store_timeout; and the bounded queue of writes waiting for Redis. The
 * queue holds keys, not values: the replay (redislink.c) sends what LMDB
 * holds for the key at that time, so repeated writes to one key converge.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "redislocal.h"
#include "store_ops.h"
#include "store_redis.h"

/* ---- The cache: records read from Redis, FIFO-bounded. ---- */

static uint32_t cache_hash(enum store_kind kind, const char *key)
{
	uint32_t h = 2166136261u ^ (uint32_t)kind;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h;
}

struct centry **redislocal_cache_find(struct rstore *r, enum store_kind kind, const char *key)
{
	uint32_t h = cache_hash(kind, key);
	struct centry **pp;

	if (r->buckets == NULL)
		return NULL;
	for (pp = &r->buckets[h & (r->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->kind == kind && strcmp((*pp)->key, key) == 0)
			return pp;
	return NULL;
}

static void cache_unlink(struct rstore *r, struct centry **pp)
{
	struct centry *ce = *pp;

	*pp = ce->next;
	TAILQ_REMOVE(&r->cfifo, ce, fifo);
	r->ncache--;
	free(ce);
}

void redislocal_cache_del(struct rstore *r, enum store_kind kind, const char *key)
{
	struct centry **pp = redislocal_cache_find(r, kind, key);

	if (pp != NULL)
		cache_unlink(r, pp);
}

void redislocal_cache_put(struct rstore *r, enum store_kind kind, const char *key,
			  const struct store_rec *rec)
{
	struct centry **pp = redislocal_cache_find(r, kind, key), *ce;
	size_t len = strlen(key);

	if (r->buckets == NULL)
		return;
	if (pp != NULL) {
		(*pp)->rec = *rec;
		return;
	}
	if (r->ncache >= r->cache_max) {
		ce = TAILQ_FIRST(&r->cfifo);
		cache_unlink(r, redislocal_cache_find(r, ce->kind, ce->key));
	}
	if ((ce = malloc(sizeof(*ce) + len + 1)) == NULL)
		return;
	ce->hash = cache_hash(kind, key);
	ce->kind = kind;
	ce->rec = *rec;
	memcpy(ce->key, key, len + 1);
	ce->next = r->buckets[ce->hash & (r->nbuckets - 1)];
	r->buckets[ce->hash & (r->nbuckets - 1)] = ce;
	TAILQ_INSERT_TAIL(&r->cfifo, ce, fifo);
	r->ncache++;
}

/*
 * redislocal_lookup - the answer without Redis: the LMDB file (our own writes)
 * and the cache (what Redis told us); the more recently updated wins.
 */
int redislocal_lookup(struct rstore *r, enum store_kind kind, const char *key,
		      struct store_rec *rec)
{
	struct centry **pp = redislocal_cache_find(r, kind, key);
	int found = store_lmdb_lookup(r->local, kind, key, rec);

	if (pp != NULL && (*pp)->rec.expires > time(NULL) &&
	    (found != 1 || (*pp)->rec.last > rec->last)) {
		*rec = (*pp)->rec;
		return 1;
	}
	return found;
}

/* ---- Writes waiting for Redis. ---- */

struct rwrite *redislocal_write_new(struct rstore *r, enum store_kind kind, const char *key)
{
	size_t len = strlen(key);
	struct rwrite *w = malloc(sizeof(*w) + len + 1);

	if (w != NULL) {
		w->r = r;
		w->kind = kind;
		memcpy(w->key, key, len + 1);
	}
	return w;
}

/* redislocal_enqueue - keep w for the replay; when the queue is full the oldest goes. */
void redislocal_enqueue(struct rstore *r, struct rwrite *w)
{
	if (r->nqueue >= r->queue_max) {
		struct rwrite *old = TAILQ_FIRST(&r->queue);

		TAILQ_REMOVE(&r->queue, old, link);
		free(old);
		r->nqueue--;
		r->dropped++;
	}
	TAILQ_INSERT_TAIL(&r->queue, w, link);
	r->nqueue++;
}

void redislocal_free(struct rstore *r)
{
	struct rwrite *w;
	struct centry *ce;

	while ((w = TAILQ_FIRST(&r->queue)) != NULL) {
		TAILQ_REMOVE(&r->queue, w, link);
		free(w);
	}
	while ((ce = TAILQ_FIRST(&r->cfifo)) != NULL) {
		TAILQ_REMOVE(&r->cfifo, ce, fifo);
		free(ce);
	}
	free(r->buckets);
	r->buckets = NULL;
}
