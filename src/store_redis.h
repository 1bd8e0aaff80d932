/*
 * store_redis.h - the state of the Redis store, private to its files:
 * store_redis.c (the backend's entry: lookups, writes, listings, open and
 * close), redislink.c (the connections to Redis and keeping them in sync),
 * redislocal.c (the local side: the cache and the queue of writes for an
 * outage) and redisfmt.c (the formats in Redis). Callers use store.h; the
 * backend's entry points are in store_ops.h.
 */
#ifndef MXG_STORE_REDIS_H
#define MXG_STORE_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "redisfmt.h"
#include "store.h"
#include "store_ops.h"

#define CHANNEL "mxguard:events"
#define MSG_MAX REDISFMT_MSG_MAX
#define INFLIGHT_MAX 10000 /* commands awaiting an answer before a fallback */

/* A write on its way to Redis, or queued until Redis is back. */
struct rwrite {
	TAILQ_ENTRY(rwrite) link;
	struct rstore *r;
	enum store_kind kind;
	char key[];
};
TAILQ_HEAD(rwrites, rwrite);

/* A record Redis gave us, kept for an outage. */
struct centry {
	struct centry *next; /* hash chain */
	TAILQ_ENTRY(centry) fifo;
	uint32_t hash;
	enum store_kind kind;
	struct store_rec rec;
	char key[];
};

struct rstore {
	struct event_base *base;
	void *local; /* the LMDB backend */
	/* Where Redis is. */
	char *host, *path, *user, *pass;
	int port, db;
	char where[160]; /* for logs: host:port or the socket path, never the password */
	int timeout_ms;
	/* The connections. */
	redisAsyncContext *ac, *sub;
	int ready;	      /* ac answered its handshake */
	int up;		      /* ready and fast enough: lookups go to Redis */
	int64_t ac_started;   /* monotonic ms of the current connect */
	int64_t next_connect; /* monotonic ms: no attempt before */
	int64_t next_sub;     /* same for the subscriber */
	int backoff;	      /* seconds before the next attempt */
	int sub_backoff;
	int ping_out; /* a probe is on its way */
	int64_t ping_sent;
	redisContext *sync; /* the blocking connection, on demand */
	uint64_t inflight;  /* gets and writes awaiting an answer */
	int slow_run;	    /* lookups timed out in a row */
	/* The fallback. */
	int fallback, logged;
	time_t bad_logged; /* last warning about a bad record (one a minute) */
	int64_t fallback_since;
	uint64_t fallbacks, timeouts, dropped;
	char why[200];
	struct rwrites queue;
	size_t nqueue, queue_max;
	struct event *tick, *replay;
	/* The cache. */
	struct centry **buckets;
	size_t nbuckets, ncache, cache_max;
	TAILQ_HEAD(, centry) cfifo;
	/* Lookups not yet freed, messages. */
	TAILQ_HEAD(, rreq) reqs;
	store_msg_fn msg_cb;
	void *msg_arg;
	char id[96];
	int *alive;
	int closing;
};

/* mono_ms, wall_ms - the monotonic and the wall clock in milliseconds. */
static inline int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
